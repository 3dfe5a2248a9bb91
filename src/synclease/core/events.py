"""Events: what ``sync push`` queues and the worker uploads. Pure validation and wire format.

One event is ``{"id", "type", "data", "created_at"}``; a batch is ``{"events": [...]}``, posted to the
session's server. :func:`classify_status` says what the server's answer means for the batch (and
:mod:`synclease.core.delivery` what the worker does about it); :func:`event_wire_bytes` says, without
building it, how many bytes an event adds to an encoded batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from synclease.core.codec import CodecError, parse_json
from synclease.core.errors import BadInputError
from synclease.core.record import record

MAX_EVENT_TYPE_CHARS = 200
#: One event's ``data``, JSON-encoded, may not exceed this: a huge event would block every batch.
MAX_EVENT_DATA_BYTES = 1024 * 1024
_NDJSON_KEYS = frozenset({"type", "data"})

OutcomeKind = Literal["ok", "auth_failed", "retryable", "rejected"]


@record
class Event:
    """A queued event. ``data_json`` is the stored JSON text, sent as-is; ``data`` decodes it.

    ``attempts`` counts claims; ``rejections`` counts the times the server refused this event *alone*
    permanently (a 4xx for a one-event batch, see :mod:`synclease.core.delivery`)."""

    id: str
    type: str
    data_json: str
    created_at: str
    attempts: int
    rejections: int = 0

    @property
    def data(self) -> Any:
        return json.loads(self.data_json)


def validate_event(event_type: object, data: object) -> tuple[str, str]:
    """Check one event; return ``(type, data as compact JSON)``. Bad input is :class:`BadInputError`."""
    if not isinstance(event_type, str) or not event_type.strip():
        raise BadInputError("event type must be a non-empty string", hint="give e.g. --type build.finished")
    if len(event_type) > MAX_EVENT_TYPE_CHARS:
        raise BadInputError(
            f"event type is longer than {MAX_EVENT_TYPE_CHARS} characters", hint="use a shorter type name"
        )
    if not event_type.isprintable():
        raise BadInputError("event type contains control characters", hint="use a plain type name")
    try:
        data_json = json.dumps(data, allow_nan=False, separators=(",", ":"), ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        raise BadInputError(
            f"event data is not JSON-serialisable ({type(data).__name__})",
            hint="give plain JSON values: objects, arrays, strings, finite numbers, true/false/null",
        ) from None
    if len(data_json) > MAX_EVENT_DATA_BYTES:
        raise BadInputError(
            f"event data is larger than {MAX_EVENT_DATA_BYTES} bytes as JSON", hint="split it into events"
        )
    return event_type, data_json


def parse_ndjson_events(lines: Iterable[str]) -> list[tuple[str, Any]]:
    """Parse NDJSON lines ``{"type": T, "data": D}`` into ``(type, data)`` pairs; blank lines are skipped.

    ``data`` may be omitted (``null``); other keys are refused so a typo is not silently dropped.
    A bad line is :class:`BadInputError` naming its line number; nothing is returned for bad input.
    """
    events: list[tuple[str, Any]] = []
    hint = 'each line must be a JSON object like {"type": "build.finished", "data": {...}}'
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            document = parse_json(line)
        except CodecError as exc:
            reason = exc.detail if exc.reason == "not_json" and exc.detail else "not valid JSON"
            raise BadInputError(f"line {number}: {reason}", hint=hint) from None
        if not isinstance(document, dict):
            raise BadInputError(f"line {number}: not a JSON object", hint=hint)
        unknown = sorted(set(document) - _NDJSON_KEYS)
        if unknown:
            raise BadInputError(f"line {number}: unknown key {unknown[0][:40]!r}", hint=hint)
        try:
            validate_event(document.get("type"), document.get("data"))
        except BadInputError as exc:
            raise BadInputError(f"line {number}: {exc.message}", hint=exc.hint) from None
        events.append((document["type"], document.get("data")))
    return events


_BATCH_HEAD = '{"events":['
_BATCH_TAIL = "]}"


def _event_part(event_id: str, event_type: str, data_json: str, created_at: str) -> str:
    # A raw JSON splice: ``data_json`` is already compact JSON; the strings are escaped to ASCII.
    return '{"id":%s,"type":%s,"data":%s,"created_at":%s}' % (  # noqa: UP031 - not text formatting
        json.dumps(event_id),
        json.dumps(event_type),
        data_json,
        json.dumps(created_at),
    )


def encode_batch(events: Sequence[Event]) -> bytes:
    """``{"events": [{"id", "type", "data", "created_at"}, ...]}``; ``data`` is the stored JSON, verbatim."""
    parts = [_event_part(e.id, e.type, e.data_json, e.created_at) for e in events]
    return (_BATCH_HEAD + ",".join(parts) + _BATCH_TAIL).encode("utf-8")


#: The bytes of an encoded batch that belong to no event: ``{"events":[`` and ``]}``.
BATCH_ENVELOPE_BYTES = len(_BATCH_HEAD) + len(_BATCH_TAIL)


def event_wire_bytes(event_id: str, event_type: str, data_bytes: int, created_at: str) -> int:
    """Bytes one event adds to :func:`encode_batch`'s output, its separating comma included, given the
    UTF-8 length of its stored data. So ``len(encode_batch(es)) == BATCH_ENVELOPE_BYTES - 1 + sum(...)``
    for a non-empty batch."""
    return len(_event_part(event_id, event_type, "", created_at).encode("utf-8")) + data_bytes + 1


def classify_status(status: int) -> OutcomeKind:
    if 200 <= status < 300:
        return "ok"
    if status in (401, 403):
        return "auth_failed"
    if status in (408, 429) or 500 <= status < 600:
        return "retryable"
    return "rejected"
