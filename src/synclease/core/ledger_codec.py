"""Ledger v1 lines: :class:`~synclease.core.ledger.LedgerEvent` ⇄ one JSON line.

:func:`encode_event` renders every field (null where unset, sorted keys, ASCII, one trailing newline)
and drops the oldest log lines, setting ``log_truncated``, until the line fits
:data:`~synclease.core.ledger.MAX_LINE_BYTES`: no encoded line is ever larger. :func:`decode_event` is
strict (:class:`~synclease.core.codec.CodecError` with a short reason): a missing or bad field, an
unknown schema, version, event or reason, NaN, an oversized line. Unknown fields are ignored.
:func:`decode_lines` decodes a file's bytes and skips and counts every line it refuses.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from synclease.core.actor import COMMAND_RE, MAX_COMMAND_CHARS, Actor
from synclease.core.clock import to_wire
from synclease.core.codec import MAX_PID, CodecError, Strict, as_text, check_header, dump_line, load_object
from synclease.core.constants import SYNC_PORT_RANGE
from synclease.core.escalate import CleanupPath
from synclease.core.ledger import (
    ERROR_CODE_RE,
    LEDGER_SCHEMA,
    LEDGER_SCHEMA_VERSION,
    LOG_TAIL_LINES,
    MAX_GENERATION,
    MAX_IDLE_SECONDS,
    MAX_LINE_BYTES,
    MAX_QUEUE_DEPTH,
    MAX_ROOT_CHARS,
    MAX_VERSION_CHARS,
    EventEvidence,
    EventKind,
    LedgerEvent,
    clean_log_line,
    is_instance_id,
    is_printable,
    matches,
)
from synclease.core.reasons import LedgerReason

_KINDS = frozenset(kind.value for kind in EventKind)
_REASONS = frozenset(reason.value for reason in LedgerReason)
_CLEANUP_PATHS = frozenset(path.value for path in CleanupPath)


# --- encoding -----------------------------------------------------------------------------------


def _value(member: enum.Enum | None) -> Any:
    return None if member is None else member.value


def _payload(event: LedgerEvent, log_tail: tuple[str, ...] | None, truncated: bool) -> dict[str, Any]:
    ev = event.evidence
    return {
        "schema": LEDGER_SCHEMA,
        "schema_version": LEDGER_SCHEMA_VERSION,
        "at": to_wire(event.at),
        "event": event.kind.value,
        "instance_id": event.instance_id,
        "pid": event.pid,
        "port": event.port,
        "package_version": event.package_version,
        "reason": _value(event.reason),
        "by": None if event.by is None else {"pid": event.by.pid, "command": event.by.command},
        "evidence": {
            "idle_seconds": ev.idle_seconds,
            "superseded_by": ev.superseded_by,
            "superseded_generation": ev.superseded_generation,
            "queue_depth": ev.queue_depth,
            "cleanup_path": _value(ev.cleanup_path),
            "error_code": ev.error_code,
            "log_tail": None if log_tail is None else list(log_tail),
            "log_truncated": truncated,
            "daemon_root": ev.daemon_root,
        },
    }


def encode_event(event: LedgerEvent) -> bytes:
    """One JSON line, newline included, at most :data:`MAX_LINE_BYTES`: the oldest log lines are
    dropped (and ``log_truncated`` set) until it fits. Without a log tail every event fits."""
    tail, truncated = event.evidence.log_tail, event.evidence.log_truncated
    line = dump_line(_payload(event, tail, truncated))
    while len(line) > MAX_LINE_BYTES and tail:
        tail, truncated = tail[1:], True
        line = dump_line(_payload(event, tail, truncated))
    if len(line) > MAX_LINE_BYTES:  # unreachable: every other field is bounded far below the limit
        raise ValueError(f"ledger event does not fit in {MAX_LINE_BYTES} bytes")
    return line


# --- decoding -----------------------------------------------------------------------------------


def _optional_id(fields: Strict, name: str) -> str | None:
    value = fields.doc.get(name)
    if value is not None and not is_instance_id(value):
        raise CodecError("bad_field", name)
    return value


def _section(doc: Mapping[str, Any], name: str) -> Strict | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CodecError("bad_field", name)
    return Strict(value)


def _log_tail(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    ok = isinstance(value, list) and len(value) <= LOG_TAIL_LINES
    lines = tuple(value) if isinstance(value, list) else ()
    for line in lines:
        ok = ok and isinstance(line, str) and line == clean_log_line(line)
    if not ok:
        raise CodecError("bad_field", "evidence.log_tail")
    return lines


def _evidence(fields: Strict | None) -> EventEvidence:
    if fields is None:
        return EventEvidence()
    path = fields.optional_choice("cleanup_path", _CLEANUP_PATHS)
    error_code = fields.doc.get("error_code")
    if error_code is not None and not matches(ERROR_CODE_RE, error_code):
        raise CodecError("bad_field", "evidence.error_code")
    root = fields.doc.get("daemon_root")
    if root is not None and not (as_text(root, MAX_ROOT_CHARS) is not None and is_printable(root)):
        raise CodecError("bad_field", "evidence.daemon_root")
    truncated = fields.doc.get("log_truncated", False)
    if not isinstance(truncated, bool):
        raise CodecError("bad_field", "evidence.log_truncated")
    return EventEvidence(
        idle_seconds=fields.optional_number("idle_seconds", 0.0, MAX_IDLE_SECONDS),
        superseded_by=_optional_id(fields, "superseded_by"),
        superseded_generation=fields.optional_integer("superseded_generation", 1, MAX_GENERATION),
        queue_depth=fields.optional_integer("queue_depth", 0, MAX_QUEUE_DEPTH),
        cleanup_path=None if path is None else CleanupPath(path),
        error_code=error_code,
        log_tail=_log_tail(fields.doc.get("log_tail")),
        log_truncated=truncated,
        daemon_root=root,
    )


def _actor(fields: Strict | None) -> Actor | None:
    if fields is None:
        return None
    command = fields.text("command", MAX_COMMAND_CHARS)
    if not COMMAND_RE.match(command):
        raise CodecError("bad_field", "by.command")
    return Actor(fields.integer("pid", 1, MAX_PID), command)


def decode_event(line: bytes) -> LedgerEvent:
    """One line (its newline optional) → an event, or :class:`CodecError` with a short reason."""
    doc = load_object(line.removesuffix(b"\n"), MAX_LINE_BYTES - 1)
    check_header(doc, LEDGER_SCHEMA, LEDGER_SCHEMA_VERSION)
    fields = Strict(doc)
    reason = fields.optional_choice("reason", _REASONS)
    port = fields.optional_integer("port", SYNC_PORT_RANGE.start, SYNC_PORT_RANGE.stop - 1)
    try:
        return LedgerEvent(
            at=fields.time("at"),
            kind=EventKind(fields.choice("event", _KINDS)),
            instance_id=_optional_id(fields, "instance_id"),
            pid=fields.optional_integer("pid", 1, MAX_PID),
            port=port,
            package_version=fields.optional_text("package_version", MAX_VERSION_CHARS),
            reason=None if reason is None else LedgerReason(reason),
            by=_actor(_section(doc, "by")),
            evidence=_evidence(_section(doc, "evidence")),
        )
    except CodecError:
        raise
    except ValueError as exc:  # a check of the records that the field checks above did not make
        raise CodecError("bad_field", str(exc)[:80]) from None


def decode_lines(data: bytes, *, complete: bool = False) -> tuple[list[LedgerEvent], int]:
    """Every valid event in ``data`` (in order) and how many lines were skipped. Bytes after the last
    newline are not a line yet (a write may be in flight): ignored, unless ``complete`` (a rotated
    file, which nobody writes any more), where they count as one skipped line."""
    lines = data.split(b"\n")
    rest = lines.pop()
    events: list[LedgerEvent] = []
    skipped = 1 if complete and rest else 0
    for raw in lines:
        try:
            events.append(decode_event(raw))
        except CodecError:
            skipped += 1
    return events, skipped


def to_document(event: LedgerEvent) -> dict[str, Any]:
    """The event as a JSON object, exactly the fields of its ledger line (for ``--json`` outputs)."""
    return _payload(event, event.evidence.log_tail, event.evidence.log_truncated)
