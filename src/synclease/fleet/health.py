"""Parse a ``/api/health`` document into a :class:`HealthReport`. Pure, total: never raises.

Whatever answered may be one of ours, a legacy daemon, a dashboard, or a hostile program, so every
field is type-checked on its own and a wrong-typed or oversized one becomes None; the rest survive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from synclease.clock import from_wire
from synclease.fleet.model import HealthReport

SYNC_FAMILY = "sync"
MAX_FIELD_CHARS = 4096
MAX_TIME_CHARS = 64
MAX_PORT = 65535
MAX_PID = 2**31 - 1
MAX_START_TIME = 1e11


def _text(doc: Mapping[str, Any], name: str, limit: int = MAX_FIELD_CHARS) -> str | None:
    value = doc.get(name)
    if not isinstance(value, str) or not value or len(value) > limit or "\x00" in value:
        return None
    return value


def _int(doc: Mapping[str, Any], name: str, lo: int, hi: int) -> int | None:
    value = doc.get(name)
    if type(value) is not int or not lo <= value <= hi:
        return None
    return value


def _float(doc: Mapping[str, Any], name: str, lo: float, hi: float) -> float | None:
    value = doc.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and lo <= number <= hi else None


def _bool(doc: Mapping[str, Any], name: str) -> bool | None:
    value = doc.get(name)
    return value if isinstance(value, bool) else None


def _time(doc: Mapping[str, Any], name: str) -> datetime | None:
    text = _text(doc, name, MAX_TIME_CHARS)
    if text is None:
        return None
    try:
        return from_wire(text)
    except (ValueError, OverflowError):
        return None


def _section(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = doc.get(name)
    return value if isinstance(value, dict) else {}


def is_sync_like(doc: Mapping[str, Any], protocol_version: int | None, package_version: str | None) -> bool:
    """A sync self-report: family ``"sync"``, or no family (absent or null) and both versions (legacy).

    A family of any other value or type is not sync-like, whatever else the document says.
    """
    family = doc.get("daemon_family")
    if family is not None:
        return isinstance(family, str) and family == SYNC_FAMILY
    return protocol_version is not None and package_version is not None


def parse_health(doc: object) -> HealthReport | None:
    """The self-report in ``doc`` (a decoded JSON value), or None when it is not a JSON object."""
    if not isinstance(doc, dict):
        return None
    lease, sync = _section(doc, "lease"), _section(doc, "sync")
    protocol_version = _int(doc, "protocol_version", 0, 1_000_000)
    package_version = _text(doc, "package_version", 64)
    return HealthReport(
        family=_text(doc, "daemon_family", 64),
        sync_like=is_sync_like(doc, protocol_version, package_version),
        instance_id=_text(doc, "instance_id", 64),
        scope_id=_text(doc, "scope_id", 128),
        daemon_root=_text(doc, "daemon_root"),
        pid=_int(doc, "pid", 1, MAX_PID),
        port=_int(doc, "port", 1, MAX_PORT),
        process_start_time=_float(doc, "process_start_time", 0.0, MAX_START_TIME),
        package_version=package_version,
        protocol_version=protocol_version,
        started_at=_time(doc, "started_at"),
        lease_state=_text(lease, "state", 32),
        lease_renewed_at=_time(lease, "renewed_at"),
        lease_expires_at=_time(lease, "expires_at"),
        sync_running=_bool(sync, "running"),
        queue_depth=_int(sync, "queue_depth", 0, 2**62),
        last_sync=_time(sync, "last_sync"),
        consecutive_failures=_int(sync, "consecutive_failures", 0, 2**62),
        auth_scope=_text(doc, "auth_scope"),
        server_url=_text(doc, "server_url"),
        queue_db_path=_text(doc, "queue_db_path"),
        project=_text(doc, "project"),
    )
