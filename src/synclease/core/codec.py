"""The record-codec kit: one JSON loader and one set of field checks, strict or lenient.

*Strict* (:class:`Strict`) is for records we own (lease, singleton, dashboard record, session, ledger):
a missing or bad field is a :class:`CodecError` with a short ``reason``, and such a file is never
trusted. *Lenient* (:class:`Lenient`) is for what others tell us (``/api/health`` self-reports): a bad
field becomes None and the rest survive. Both apply the very same checks (:func:`as_text`, ...).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from synclease.core.clock import from_wire

MAX_TEXT_CHARS = 4096
MAX_TIME_CHARS = 64
MAX_PID = 2**31 - 1
#: Process start times (epoch seconds) above this are not believed.
MAX_START_TIME = 1e11
#: Timestamps outside these years are rejected (none of ours can be; far ones would overflow).
MIN_YEAR = 1970
MAX_YEAR = 9998
#: Arrays and objects nested deeper than this are refused (no record of ours nests past 4).
MAX_NESTING = 32


class CodecError(ValueError):
    """A document that is not a valid record; ``reason`` is short and machine-readable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# --- documents ----------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise CodecError("bad_number", f"{name} is not allowed")


def _nesting(text: str) -> int:
    """How deep ``text``'s arrays and objects nest (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(text: str) -> Any:
    """Decode one JSON value; NaN/Infinity, bad syntax and nesting deeper than :data:`MAX_NESTING` are
    :class:`CodecError`.

    The nesting bound is ours, not the parser's: how deep ``json`` recurses before it gives up differs
    between interpreter versions (3.13 takes what 3.11 refused), and a verdict must not.
    """
    if text.count("[") + text.count("{") > MAX_NESTING and _nesting(text) > MAX_NESTING:
        raise CodecError("not_json", "nested too deeply")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except CodecError:
        raise
    except RecursionError:
        raise CodecError("not_json", "nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise CodecError("not_json", exc.msg) from None
    except ValueError as exc:  # e.g. an integer literal beyond int_max_str_digits
        raise CodecError("not_json", str(exc)[:80]) from None


def load_object(data: bytes, max_bytes: int) -> dict[str, Any]:
    """Bytes → a JSON object: ``too_large``, ``empty``, ``not_utf8``, ``not_object``, ``not_json``."""
    if len(data) > max_bytes:
        raise CodecError("too_large", f"{len(data)} bytes")
    stripped = data.strip()
    if not stripped:
        raise CodecError("empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CodecError("not_utf8") from None
    if stripped.startswith(b"["):
        # Decided before parsing, so the answer does not depend on how deep a list the parser takes.
        raise CodecError("not_object")
    doc = parse_json(text)
    if not isinstance(doc, dict):
        raise CodecError("not_object")
    return doc


def check_header(doc: Mapping[str, Any], schema: str, version: int) -> None:
    """The ``schema`` name and ``schema_version`` every record of ours carries."""
    if doc.get("schema") != schema:
        raise CodecError("unknown_schema", repr(doc.get("schema"))[:80])
    found = doc.get("schema_version")
    if type(found) is not int:
        raise CodecError("bad_field", "schema_version")
    if found != version:
        raise CodecError("unknown_version", str(found))


def dump(payload: Mapping[str, Any]) -> bytes:
    """The one on-disk rendering of our records: sorted keys, no NaN, one trailing newline."""
    return (json.dumps(payload, sort_keys=True, allow_nan=False, indent=1) + "\n").encode()


def dump_line(payload: Mapping[str, Any]) -> bytes:
    """The one rendering of a record as a JSON line: sorted keys, compact, ASCII only, no NaN, one
    trailing newline (and no other, since JSON escapes every newline inside a string)."""
    return (json.dumps(payload, sort_keys=True, allow_nan=False, separators=(",", ":")) + "\n").encode()


# --- field checks: the value if it passes, else None ---------------------------------------------


def as_text(value: object, limit: int = MAX_TEXT_CHARS) -> str | None:
    if not isinstance(value, str) or not value or len(value) > limit or "\x00" in value:
        return None
    return value


def as_int(value: object, lo: int, hi: int) -> int | None:
    if type(value) is not int or not lo <= value <= hi:
        return None
    return value


def as_float(value: object, lo: float, hi: float, *, exclusive_lo: bool = False) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    too_low = number <= lo if exclusive_lo else number < lo
    if not math.isfinite(number) or too_low or number > hi:
        return None
    return number


def as_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def as_time(value: object) -> datetime | None:
    text = as_text(value, MAX_TIME_CHARS)
    if text is None:
        return None
    try:
        moment = from_wire(text)
    except (ValueError, OverflowError):
        return None
    # Bounded so that ``renewed_at + ttl_seconds`` can never overflow in a reader.
    return moment if MIN_YEAR <= moment.year <= MAX_YEAR else None


def as_section(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


# --- readers ------------------------------------------------------------------------------------


class Lenient:
    """Fields of a document someone else wrote: a missing or bad field is None."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc

    def text(self, name: str, limit: int = MAX_TEXT_CHARS) -> str | None:
        return as_text(self.doc.get(name), limit)

    def integer(self, name: str, lo: int, hi: int) -> int | None:
        return as_int(self.doc.get(name), lo, hi)

    def number(self, name: str, lo: float, hi: float) -> float | None:
        return as_float(self.doc.get(name), lo, hi)

    def boolean(self, name: str) -> bool | None:
        return as_bool(self.doc.get(name))

    def time(self, name: str) -> datetime | None:
        return as_time(self.doc.get(name))

    def section(self, name: str) -> Lenient:
        return Lenient(as_section(self.doc.get(name)))


class Strict:
    """Fields of a record we own: a missing or bad field is ``CodecError("bad_field", name)``."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc

    def _need(self, value: Any, name: str) -> Any:
        if value is None:
            raise CodecError("bad_field", name)
        return value

    def text(self, name: str, limit: int = MAX_TEXT_CHARS) -> str:
        result: str = self._need(as_text(self.doc.get(name), limit), name)
        return result

    def optional_text(self, name: str, limit: int = MAX_TEXT_CHARS) -> str | None:
        return None if self.doc.get(name) is None else self.text(name, limit)

    def integer(self, name: str, lo: int, hi: int) -> int:
        result: int = self._need(as_int(self.doc.get(name), lo, hi), name)
        return result

    def optional_integer(self, name: str, lo: int, hi: int) -> int | None:
        return None if self.doc.get(name) is None else self.integer(name, lo, hi)

    def number(self, name: str, lo: float, hi: float, *, exclusive_lo: bool = False) -> float:
        value = as_float(self.doc.get(name), lo, hi, exclusive_lo=exclusive_lo)
        result: float = self._need(value, name)
        return result

    def optional_number(self, name: str, lo: float, hi: float) -> float | None:
        return None if self.doc.get(name) is None else self.number(name, lo, hi)

    def time(self, name: str) -> datetime:
        result: datetime = self._need(as_time(self.doc.get(name)), name)
        return result

    def choice(self, name: str, allowed: frozenset[str]) -> str:
        value = self.doc.get(name)
        if not isinstance(value, str) or value not in allowed:
            raise CodecError("bad_field", name)
        return value

    def optional_choice(self, name: str, allowed: frozenset[str]) -> str | None:
        return None if self.doc.get(name) is None else self.choice(name, allowed)
