"""Lease and singleton records ⇄ JSON bytes. Pure: no I/O, no clock reads.

Every record carries a ``schema`` name and ``schema_version``. Unknown fields are tolerated and
dropped; a missing or bad field, an unknown schema or version, NaN/Infinity, or an oversized
document is a :class:`CodecError` with a short ``reason``: such a file is never trusted.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from synclease.clock import from_wire, to_wire
from synclease.constants import (
    FAMILY_RANGES,
    LEASE_SCHEMA,
    LEASE_SCHEMA_VERSION,
    MAX_RECORD_BYTES,
    SINGLETON_SCHEMA,
)

LeaseState = Literal["starting", "serving", "draining"]
LEASE_STATES: frozenset[str] = frozenset({"starting", "serving", "draining"})
#: ``\A``/``\Z``, not ``^``/``$``: ``$`` would also accept a trailing newline.
INSTANCE_ID_RE = re.compile(r"\A[A-Za-z0-9_-]{8,64}\Z")
MAX_TTL_SECONDS = 24 * 3600.0
MAX_TOKEN_CHARS = 256
MAX_TEXT_CHARS = 4096
#: Timestamps outside these years are rejected (none of ours can be; far ones would overflow).
MIN_YEAR = 1970
MAX_YEAR = 9998


def new_instance_id() -> str:
    """A fresh random instance id (16 hex digits): names one daemon's lease and lock files."""
    return secrets.token_hex(8)


class CodecError(ValueError):
    """A document that is not a valid record; ``reason`` is short and machine-readable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class LeaseRecord:
    family: str
    instance_id: str
    scope_id: str
    daemon_root: str
    pid: int
    process_start_time: float
    port: int
    package_version: str
    protocol_version: int
    acquired_at: datetime
    renewed_at: datetime
    ttl_seconds: float
    state: LeaseState
    token: str
    auth_scope: str | None = None
    queue_db_path: str | None = None

    @property
    def expires_at(self) -> datetime:
        return self.renewed_at + timedelta(seconds=self.ttl_seconds)

    def renewed(self, now: datetime, state: LeaseState | None = None) -> LeaseRecord:
        return replace(self, renewed_at=now, state=state or self.state)


@dataclass(frozen=True)
class SingletonRecord:
    family: str
    instance_id: str
    generation: int
    pid: int
    port: int
    package_version: str
    protocol_version: int
    written_at: datetime


def is_expired(lease: LeaseRecord, now: datetime) -> bool:
    """The expiry rule of the protocol: expired iff ``now > renewed_at + ttl_seconds``."""
    return now > lease.expires_at


# --- encoding -----------------------------------------------------------------------------------


def _dump(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload, sort_keys=True, allow_nan=False, indent=1) + "\n").encode()


def encode_lease(lease: LeaseRecord) -> bytes:
    payload: dict[str, Any] = {"schema": LEASE_SCHEMA, "schema_version": LEASE_SCHEMA_VERSION}
    for key, value in asdict(lease).items():
        payload[key] = to_wire(value) if isinstance(value, datetime) else value
    return _dump(payload)


def encode_singleton(record: SingletonRecord) -> bytes:
    payload: dict[str, Any] = {"schema": SINGLETON_SCHEMA, "schema_version": LEASE_SCHEMA_VERSION}
    for key, value in asdict(record).items():
        payload[key] = to_wire(value) if isinstance(value, datetime) else value
    return _dump(payload)


# --- decoding -----------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise CodecError("bad_number", f"{name} is not allowed")


def _load(data: bytes, schema: str) -> dict[str, Any]:
    if len(data) > MAX_RECORD_BYTES:
        raise CodecError("too_large", f"{len(data)} bytes")
    if not data.strip():
        raise CodecError("empty")
    try:
        text = data.decode("utf-8")
        doc = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise CodecError("not_utf8") from None
    except CodecError:
        raise
    except RecursionError:
        raise CodecError("not_json", "nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise CodecError("not_json", exc.msg) from None
    except ValueError as exc:  # e.g. an integer literal beyond int_max_str_digits
        raise CodecError("not_json", str(exc)[:80]) from None
    if not isinstance(doc, dict):
        raise CodecError("not_object")
    if doc.get("schema") != schema:
        raise CodecError("unknown_schema", repr(doc.get("schema"))[:80])
    version = doc.get("schema_version")
    if type(version) is not int:
        raise CodecError("bad_field", "schema_version")
    if version != LEASE_SCHEMA_VERSION:
        raise CodecError("unknown_version", str(version))
    return doc


def _int(doc: dict[str, Any], name: str, lo: int, hi: int) -> int:
    value = doc.get(name)
    if type(value) is not int or not lo <= value <= hi:
        raise CodecError("bad_field", name)
    return value


def _float(doc: dict[str, Any], name: str, lo: float, hi: float, *, exclusive_lo: bool) -> float:
    value = doc.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise CodecError("bad_field", name)
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        raise CodecError("bad_field", name) from None
    too_low = number <= lo if exclusive_lo else number < lo
    if not math.isfinite(number) or too_low or number > hi:
        raise CodecError("bad_field", name)
    return number


def _text(doc: dict[str, Any], name: str, *, limit: int = MAX_TEXT_CHARS) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value or len(value) > limit or "\x00" in value:
        raise CodecError("bad_field", name)
    return value


def _optional_text(doc: dict[str, Any], name: str) -> str | None:
    return None if doc.get(name) is None else _text(doc, name)


def _time(doc: dict[str, Any], name: str) -> datetime:
    value = _text(doc, name, limit=64)
    try:
        moment = from_wire(value)
    except (ValueError, OverflowError):
        raise CodecError("bad_field", name) from None
    # Bounded so that ``renewed_at + ttl_seconds`` can never overflow in a reader.
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise CodecError("bad_field", name)
    return moment


def _family_and_port(doc: dict[str, Any]) -> tuple[str, int]:
    family = doc.get("family")
    if not isinstance(family, str) or family not in FAMILY_RANGES:
        raise CodecError("bad_field", "family")
    port_range = FAMILY_RANGES[family]
    return family, _int(doc, "port", port_range.start, port_range.stop - 1)


def _instance_id(doc: dict[str, Any]) -> str:
    value = doc.get("instance_id")
    if not isinstance(value, str) or not INSTANCE_ID_RE.match(value):
        raise CodecError("bad_field", "instance_id")
    return value


def decode_lease(data: bytes) -> LeaseRecord:
    doc = _load(data, LEASE_SCHEMA)
    family, port = _family_and_port(doc)
    state = doc.get("state")
    if not isinstance(state, str) or state not in LEASE_STATES:
        raise CodecError("bad_field", "state")
    acquired_at, renewed_at = _time(doc, "acquired_at"), _time(doc, "renewed_at")
    if renewed_at < acquired_at:
        raise CodecError("bad_field", "renewed_at")
    return LeaseRecord(
        family=family,
        instance_id=_instance_id(doc),
        scope_id=_text(doc, "scope_id", limit=128),
        daemon_root=_text(doc, "daemon_root"),
        pid=_int(doc, "pid", 1, 2**31 - 1),
        process_start_time=_float(doc, "process_start_time", 0.0, 1e11, exclusive_lo=False),
        port=port,
        package_version=_text(doc, "package_version", limit=64),
        protocol_version=_int(doc, "protocol_version", 1, 10_000),
        acquired_at=acquired_at,
        renewed_at=renewed_at,
        ttl_seconds=_float(doc, "ttl_seconds", 0.0, MAX_TTL_SECONDS, exclusive_lo=True),
        state=cast(LeaseState, state),
        token=_text(doc, "token", limit=MAX_TOKEN_CHARS),
        auth_scope=_optional_text(doc, "auth_scope"),
        queue_db_path=_optional_text(doc, "queue_db_path"),
    )


def decode_singleton(data: bytes) -> SingletonRecord:
    doc = _load(data, SINGLETON_SCHEMA)
    family, port = _family_and_port(doc)
    return SingletonRecord(
        family=family,
        instance_id=_instance_id(doc),
        generation=_int(doc, "generation", 1, 2**62),
        pid=_int(doc, "pid", 1, 2**31 - 1),
        port=port,
        package_version=_text(doc, "package_version", limit=64),
        protocol_version=_int(doc, "protocol_version", 1, 10_000),
        written_at=_time(doc, "written_at"),
    )
