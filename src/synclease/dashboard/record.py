"""The dashboard record ``<project>/.kittify/.dashboard`` ⇄ JSON bytes, and its defensive file I/O.

The codec is pure (:func:`encode`, :func:`decode`). The record is written atomically ``0600``
(:func:`synclease.fsio.atomic_write`) and read with :func:`synclease.fsio.read_private` (no symlink,
no foreign owner, no group/world bits, bounded size). A record that cannot be trusted (corrupt, hostile,
unknown schema or version) comes back as a problem tag and is never used to signal anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from synclease.clock import from_wire, to_wire
from synclease.constants import DASHBOARD_PORT_RANGE, LOOPBACK
from synclease.errors import BadInputError
from synclease.fsio import PRIVATE_DIR_MODE, UnsafeFileError, atomic_write, read_private, remove_file

DASHBOARD_SCHEMA = "synclease.dashboard"
DASHBOARD_SCHEMA_VERSION = 1
FAMILY = "dashboard"
KITTIFY_DIR = ".kittify"
RECORD_NAME = ".dashboard"
LOCK_NAME = ".dashboard.lock"
LOG_NAME = "dashboard.log"
MAX_DASHBOARD_RECORD_BYTES = 16 * 1024
MAX_TOKEN_CHARS = 256
MAX_TEXT_CHARS = 4096
MAX_PID = 2**31 - 1
MAX_START_TIME = 1e11


class RecordError(ValueError):
    """A document that is not a valid dashboard record; ``reason`` is short and machine-readable."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class DashboardRecord:
    """What a running dashboard says of itself on disk. The token never leaves this file."""

    project: str
    port: int
    pid: int
    process_start_time: float
    started_at: datetime
    package_version: str
    token: str = field(repr=False)

    @property
    def url(self) -> str:
        return url_for(self.port)


@dataclass(frozen=True)
class RecordEntry:
    """The record as read: ``record`` when trusted, else ``problem`` (``missing``, ``not_json``, ...)."""

    path: Path
    record: DashboardRecord | None
    problem: str | None = None
    detail: str = ""


def url_for(port: int) -> str:
    return f"http://{LOOPBACK}:{port}/"


# --- paths --------------------------------------------------------------------------------------


def kittify_dir(project: Path) -> Path:
    return project / KITTIFY_DIR


def record_path(project: Path) -> Path:
    return kittify_dir(project) / RECORD_NAME


def lock_path(project: Path) -> Path:
    return kittify_dir(project) / LOCK_NAME


def log_path(project: Path) -> Path:
    return kittify_dir(project) / LOG_NAME


def default_port_hint(project: Path) -> int:
    """A stable per-project starting port, so one project's dashboard tends to keep its URL."""
    digest = hashlib.sha256(str(project).encode()).digest()
    return DASHBOARD_PORT_RANGE.start + int.from_bytes(digest[:4], "big") % len(DASHBOARD_PORT_RANGE)


def resolve_project(raw: str | os.PathLike[str] | None) -> Path:
    """The resolved project directory (default: the current directory); it must exist."""
    given = Path.cwd() if raw is None else Path(raw).expanduser()
    try:
        resolved = given.resolve(strict=True)
    except (OSError, RuntimeError):
        raise BadInputError(
            f"project directory {str(given)!r} does not exist", hint="pass --project DIR with an existing dir"
        ) from None
    if not resolved.is_dir():
        raise BadInputError(f"project path {str(given)!r} is not a directory", hint="pass --project DIR")
    return resolved


def prepare_kittify(project: Path) -> Path:
    """Create ``<project>/.kittify`` (0700) if missing; refuse a symlink, a non-directory, a foreign
    owner, or group/world write bits (anyone else could then replace our record)."""
    path = kittify_dir(project)
    if path.is_symlink():
        raise BadInputError(f"{path} is a symlink", hint="replace it with a real directory you own")
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
        st = os.lstat(path)
    except OSError as exc:
        raise BadInputError(
            f"cannot create {path}: {exc.strerror}", hint="use a project directory you can write"
        ) from None
    if not stat.S_ISDIR(st.st_mode):
        raise BadInputError(f"{path} is not a directory", hint="move it away")
    if st.st_uid != os.geteuid():
        raise BadInputError(f"{path} is owned by uid {st.st_uid}, not you", hint="use a project you own")
    if st.st_mode & 0o022:
        raise BadInputError(
            f"{path} is group/world-writable (mode {stat.S_IMODE(st.st_mode):o})",
            hint=f"run: chmod 700 {path}",
        )
    return path


# --- codec --------------------------------------------------------------------------------------


def encode(record: DashboardRecord) -> bytes:
    payload: dict[str, Any] = {
        "schema": DASHBOARD_SCHEMA,
        "schema_version": DASHBOARD_SCHEMA_VERSION,
        "daemon_family": FAMILY,
        "project": record.project,
        "url": record.url,
        "port": record.port,
        "pid": record.pid,
        "process_start_time": record.process_start_time,
        "started_at": to_wire(record.started_at),
        "package_version": record.package_version,
        "token": record.token,
    }
    return (json.dumps(payload, sort_keys=True, allow_nan=False, indent=1) + "\n").encode()


def _reject_constant(name: str) -> Any:
    raise RecordError("bad_number", f"{name} is not allowed")


def _load(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_DASHBOARD_RECORD_BYTES:
        raise RecordError("too_large", f"{len(data)} bytes")
    if not data.strip():
        raise RecordError("empty")
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise RecordError("not_utf8") from None
    except RecordError:
        raise
    except RecursionError:
        raise RecordError("not_json", "nested too deeply") from None
    except ValueError as exc:
        raise RecordError("not_json", str(exc)[:80]) from None
    if not isinstance(doc, dict):
        raise RecordError("not_object")
    if doc.get("schema") != DASHBOARD_SCHEMA:
        raise RecordError("unknown_schema", repr(doc.get("schema"))[:80])
    version = doc.get("schema_version")
    if type(version) is not int:
        raise RecordError("bad_field", "schema_version")
    if version != DASHBOARD_SCHEMA_VERSION:
        raise RecordError("unknown_version", str(version))
    if doc.get("daemon_family") != FAMILY:
        raise RecordError("bad_field", "daemon_family")
    return doc


def _int(doc: dict[str, Any], name: str, lo: int, hi: int) -> int:
    value = doc.get(name)
    if type(value) is not int or not lo <= value <= hi:
        raise RecordError("bad_field", name)
    return value


def _text(doc: dict[str, Any], name: str, limit: int = MAX_TEXT_CHARS) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value or len(value) > limit or "\x00" in value:
        raise RecordError("bad_field", name)
    return value


def _start_time(doc: dict[str, Any]) -> float:
    value = doc.get("process_start_time")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise RecordError("bad_field", "process_start_time")
    try:
        number = float(value)
    except OverflowError:
        raise RecordError("bad_field", "process_start_time") from None
    if not math.isfinite(number) or not 0.0 <= number <= MAX_START_TIME:
        raise RecordError("bad_field", "process_start_time")
    return number


def decode(data: bytes) -> DashboardRecord:
    """Parse and validate a record; any problem is a :class:`RecordError`. Unknown fields are dropped."""
    doc = _load(data)
    port = _int(doc, "port", DASHBOARD_PORT_RANGE.start, DASHBOARD_PORT_RANGE.stop - 1)
    if doc.get("url") != url_for(port):
        raise RecordError("bad_field", "url")
    try:
        started_at = from_wire(_text(doc, "started_at", 64))
    except (ValueError, OverflowError):
        raise RecordError("bad_field", "started_at") from None
    return DashboardRecord(
        project=_text(doc, "project"),
        port=port,
        pid=_int(doc, "pid", 1, MAX_PID),
        process_start_time=_start_time(doc),
        started_at=started_at,
        package_version=_text(doc, "package_version", 64),
        token=_text(doc, "token", MAX_TOKEN_CHARS),
    )


# --- file I/O -----------------------------------------------------------------------------------


def read(project: Path) -> RecordEntry:
    """Read ``<project>/.kittify/.dashboard``; never raises for what is (or is not) there."""
    path = record_path(project)
    try:
        data = read_private(path, MAX_DASHBOARD_RECORD_BYTES)
    except FileNotFoundError:
        return RecordEntry(path, None, "missing")
    except UnsafeFileError as exc:
        return RecordEntry(path, None, exc.reason, exc.detail)
    try:
        record = decode(data)
    except RecordError as exc:
        return RecordEntry(path, None, exc.reason, exc.detail)
    if record.project != str(project):
        return RecordEntry(path, None, "project_mismatch", record.project[:200])
    return RecordEntry(path, record)


def write(project: Path, record: DashboardRecord) -> None:
    atomic_write(record_path(project), encode(record))


def is_same(a: DashboardRecord, b: DashboardRecord) -> bool:
    """The same dashboard instance: same process, port and token."""
    return (a.pid, a.port, a.token, a.process_start_time) == (b.pid, b.port, b.token, b.process_start_time)


def remove_if_own(project: Path, mine: DashboardRecord) -> bool:
    """Remove the record only if it still describes ``mine``. True if it was removed.

    Read-compare-unlink is not atomic: a new dashboard writing its record in that instant loses it.
    That heals itself: the next start finds no record, spawns one and its cleanup retires the
    unrecorded dashboard of the same project.
    """
    current = read(project).record
    if current is None or not is_same(current, mine):
        return False
    return remove_file(record_path(project))
