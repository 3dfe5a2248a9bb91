"""The shape ``protocol/health-v1.schema.json`` gives a self-report, checked without a schema library.

The package stays on its runtime dependencies, so the checker carries the schema's rules as data: the
required fields and their JSON types, the timestamp form, the port range, and the ban on secrets.
Tests validate the same documents with ``jsonschema`` against the schema file, so the two cannot drift
unnoticed. Families other than ``sync`` are held to the common core every self-report shares.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from synclease.core.codec import MAX_PID

__all__ = ["health_problems"]

TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z\Z")
INSTANCE_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}\Z")
SYNC_PORTS = range(9400, 9450)
SECRETS = ("token", "control_token")

Rule = Callable[[object], bool]


def _int(lo: int, hi: int | None = None) -> Rule:
    return lambda v: type(v) is int and v >= lo and (hi is None or v <= hi)


def _text(v: object) -> bool:
    return isinstance(v, str) and len(v) >= 1


def _opt_text(v: object) -> bool:
    return v is None or isinstance(v, str)


def _number(v: object) -> bool:
    return type(v) in (int, float) and v >= 0  # type: ignore[operator]


def _stamp(v: object) -> bool:
    return isinstance(v, str) and TIMESTAMP_RE.match(v) is not None


def _opt_stamp(v: object) -> bool:
    return v is None or _stamp(v)


def _bool(v: object) -> bool:
    return type(v) is bool


COMMON: dict[str, Rule] = {
    "pid": _int(1, MAX_PID),
    "port": _int(1, 65535),
    "process_start_time": _number,
    "package_version": _text,
}

SYNC_TOP: dict[str, Rule] = {
    "daemon_family": lambda v: v == "sync",
    "instance_id": lambda v: isinstance(v, str) and INSTANCE_RE.match(v) is not None,
    "scope_id": _text,
    "daemon_root": _text,
    "pid": _int(1),
    "port": lambda v: type(v) is int and v in SYNC_PORTS,
    "process_start_time": _number,
    "package_version": _text,
    "protocol_version": _int(1),
    "started_at": _stamp,
    "auth_scope": _opt_text,
    "server_url": _opt_text,
    "queue_db_path": _opt_text,
}
SYNC_LEASE: dict[str, Rule] = {
    "state": lambda v: v in ("starting", "serving", "draining"),
    "renewed_at": _stamp,
    "expires_at": _stamp,
}
SYNC_WORK: dict[str, Rule] = {
    "running": _bool,
    "queue_depth": _int(0),
    "last_sync": _opt_stamp,
    "consecutive_failures": _int(0),
}
SYNC_OPTIONAL: dict[str, Rule] = {
    "session_id": _opt_text,
    "boot_id": _opt_text,
    "process_start_ticks": lambda v: v is None or _int(0)(v),
}
SYNC_WORK_OPTIONAL: dict[str, Rule] = {"auth_problem": _bool, "dead_letters": _int(0), "in_flight": _bool}


def _check(doc: Mapping[str, object], rules: Mapping[str, Rule], prefix: str, required: bool) -> list[str]:
    problems = []
    for name, rule in rules.items():
        if name not in doc:
            if required:
                problems.append(f"{prefix}{name} missing")
        elif not rule(doc[name]):
            problems.append(f"{prefix}{name} invalid: {doc[name]!r}"[:120])
    return problems


def _section(doc: Mapping[str, object], name: str) -> Mapping[str, object] | None:
    value = doc.get(name)
    return value if isinstance(value, dict) else None


def health_problems(document: object, family: str) -> tuple[str, ...]:
    """What in ``document`` breaks the health schema of ``family`` (empty: it conforms)."""
    if not isinstance(document, dict):
        return ("not a JSON object",)
    problems = [f"carries a secret field {name!r}" for name in SECRETS if name in document]
    if family != "sync":
        problems += _check(document, {**COMMON, "daemon_family": lambda v: v == family}, "", True)
        return tuple(problems)
    problems += _check(document, SYNC_TOP, "", True)
    problems += _check(document, SYNC_OPTIONAL, "", False)
    for name, rules, optional in (("lease", SYNC_LEASE, None), ("sync", SYNC_WORK, SYNC_WORK_OPTIONAL)):
        section = _section(document, name)
        if section is None:
            problems.append(f"{name} missing or not an object")
            continue
        problems += _check(section, rules, f"{name}.", True)
        if optional:
            problems += _check(section, optional, f"{name}.", False)
    write_error = (_section(document, "lease") or {}).get("write_error")
    if write_error is not None and not isinstance(write_error, str):
        problems.append("lease.write_error invalid")
    return tuple(problems)
