"""Lease protocol v1: lease and singleton records ⇄ JSON bytes, and the expiry rule.

Every record carries a ``schema`` name and ``schema_version``. Unknown fields are tolerated and
dropped; a missing or bad field, an unknown schema or version, NaN/Infinity, or an oversized document
is a :class:`~synclease.core.codec.CodecError` with a short ``reason``: such a file is never trusted.
The normative spec is ``protocol/lease-v1.md``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

from synclease.core.codec import MAX_PID, MAX_START_TIME, CodecError, Strict, check_header, dump, load_object
from synclease.core.constants import (
    LEASE_SCHEMA,
    LEASE_SCHEMA_VERSION,
    MAX_RECORD_BYTES,
    SINGLETON_SCHEMA,
)
from synclease.core.family import declared, get_family
from synclease.core.identity import StartOf, StartStamp
from synclease.core.record import as_json, field, record, replace

LeaseState = Literal["starting", "serving", "draining"]
LEASE_STATES: frozenset[str] = frozenset({"starting", "serving", "draining"})
#: ``\A``/``\Z``, not ``^``/``$``: ``$`` would also accept a trailing newline.
INSTANCE_ID_RE = re.compile(r"\A[A-Za-z0-9_-]{8,64}\Z")
MAX_TTL_SECONDS = 24 * 3600.0
MAX_TOKEN_CHARS = 256


@record
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
    token: str = field(repr=False)
    auth_scope: str | None = None
    queue_db_path: str | None = None
    #: Linux: the holder's start in clock ticks since boot and the boot id (optional, protocol v1 additive).
    process_start_ticks: int | None = None
    boot_id: str | None = None

    start = StartOf[StartStamp]("process_start_time", "process_start_ticks")

    @property
    def expires_at(self) -> datetime:
        return self.renewed_at + timedelta(seconds=self.ttl_seconds)

    def renewed(self, now: datetime, state: LeaseState | None = None) -> LeaseRecord:
        """Renewed at ``now``. If the wall clock was stepped back before ``acquired_at``, the lease is
        re-acquired at ``now`` too, so ``renewed_at >= acquired_at`` holds and the record stays valid."""
        return replace(
            self, acquired_at=min(self.acquired_at, now), renewed_at=now, state=state or self.state
        )


@record
class LeaseEntry:
    """One lease file as read: ``lease`` when trusted, else ``problem`` (+ ``detail``) says why not."""

    path: Path
    instance_id: str
    lease: LeaseRecord | None
    problem: str | None = None
    detail: str = ""


@record
class SingletonRecord:
    family: str
    instance_id: str
    generation: int
    pid: int
    port: int
    package_version: str
    protocol_version: int
    written_at: datetime

    @classmethod
    def naming(cls, lease: LeaseRecord, generation: int, written_at: datetime) -> SingletonRecord:
        """The singleton record that names the holder of ``lease`` (the one way one is built)."""
        return cls(
            family=lease.family,
            instance_id=lease.instance_id,
            generation=generation,
            pid=lease.pid,
            port=lease.port,
            package_version=lease.package_version,
            protocol_version=lease.protocol_version,
            written_at=written_at,
        )


def is_expired(lease: LeaseRecord, now: datetime) -> bool:
    """The expiry rule of the protocol: expired iff ``now > renewed_at + ttl_seconds``."""
    return now > lease.expires_at


def next_generation(current: int | None, wall_ms: int) -> int:
    """Strictly above the current record's generation, and never below the wall clock in ms, so
    generations keep rising even after the record was cleared or found unreadable."""
    return max(wall_ms, 1 if current is None else current + 1)


# --- encoding -----------------------------------------------------------------------------------


def _payload(schema: str, record: LeaseRecord | SingletonRecord) -> dict[str, Any]:
    return {"schema": schema, "schema_version": LEASE_SCHEMA_VERSION, **as_json(record)}


def encode_lease(lease: LeaseRecord) -> bytes:
    return dump(_payload(LEASE_SCHEMA, lease))


def encode_singleton(record: SingletonRecord) -> bytes:
    return dump(_payload(SINGLETON_SCHEMA, record))


# --- decoding -----------------------------------------------------------------------------------


def _fields(data: bytes, schema: str) -> Strict:
    doc = load_object(data, MAX_RECORD_BYTES)
    check_header(doc, schema, LEASE_SCHEMA_VERSION)
    return Strict(doc)


def _family_and_port(fields: Strict) -> tuple[str, int]:
    family = get_family(fields.choice("family", frozenset(f.name for f in declared())))
    return family.name, fields.integer("port", family.port_range.start, family.port_range.stop - 1)


def _instance_id(fields: Strict) -> str:
    value = fields.doc.get("instance_id")
    if not isinstance(value, str) or not INSTANCE_ID_RE.match(value):
        raise CodecError("bad_field", "instance_id")
    return value


def decode_lease(data: bytes) -> LeaseRecord:
    fields = _fields(data, LEASE_SCHEMA)
    family, port = _family_and_port(fields)
    state = fields.choice("state", LEASE_STATES)
    acquired_at, renewed_at = fields.time("acquired_at"), fields.time("renewed_at")
    if renewed_at < acquired_at:
        raise CodecError("bad_field", "renewed_at")
    return LeaseRecord(
        family=family,
        instance_id=_instance_id(fields),
        scope_id=fields.text("scope_id", limit=128),
        daemon_root=fields.text("daemon_root"),
        pid=fields.integer("pid", 1, MAX_PID),
        process_start_time=fields.number("process_start_time", 0.0, MAX_START_TIME),
        port=port,
        package_version=fields.text("package_version", limit=64),
        protocol_version=fields.integer("protocol_version", 1, 10_000),
        acquired_at=acquired_at,
        renewed_at=renewed_at,
        ttl_seconds=fields.number("ttl_seconds", 0.0, MAX_TTL_SECONDS, exclusive_lo=True),
        state=cast(LeaseState, state),
        token=fields.text("token", limit=MAX_TOKEN_CHARS),
        auth_scope=fields.optional_text("auth_scope"),
        queue_db_path=fields.optional_text("queue_db_path"),
        process_start_ticks=fields.optional_integer("process_start_ticks", 0, 2**62),
        boot_id=fields.optional_text("boot_id", limit=64),
    )


def decode_singleton(data: bytes) -> SingletonRecord:
    fields = _fields(data, SINGLETON_SCHEMA)
    family, port = _family_and_port(fields)
    return SingletonRecord(
        family=family,
        instance_id=_instance_id(fields),
        generation=fields.integer("generation", 1, 2**62),
        pid=fields.integer("pid", 1, MAX_PID),
        port=port,
        package_version=fields.text("package_version", limit=64),
        protocol_version=fields.integer("protocol_version", 1, 10_000),
        written_at=fields.time("written_at"),
    )
