"""The dashboard record ``<project>/.kittify/.dashboard`` ⇄ JSON bytes.

A record that cannot be trusted (corrupt, hostile, unknown schema or version) is a
:class:`~synclease.core.codec.CodecError` with a short ``reason`` and is never used to signal anything.
The file itself is handled by :mod:`synclease.adapters.dashboard_store`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from synclease.core.clock import to_wire
from synclease.core.codec import MAX_PID, MAX_START_TIME, CodecError, Strict, check_header, dump, load_object
from synclease.core.constants import DASHBOARD, DASHBOARD_PORT_RANGE, LOOPBACK
from synclease.core.health import Claim
from synclease.core.identity import StartOf, StartStamp
from synclease.core.record import field, record

DASHBOARD_SCHEMA = "synclease.dashboard"
DASHBOARD_SCHEMA_VERSION = 1
FAMILY = DASHBOARD
KITTIFY_DIR = ".kittify"
RECORD_NAME = ".dashboard"
LOCK_NAME = ".dashboard.lock"
LOG_NAME = "dashboard.log"
MAX_DASHBOARD_RECORD_BYTES = 16 * 1024
MAX_TOKEN_CHARS = 256


@record
class DashboardRecord:
    """What a running dashboard says of itself on disk. The token never leaves this file."""

    project: str
    port: int
    pid: int
    process_start_time: float
    started_at: datetime
    package_version: str
    token: str = field(repr=False)
    process_start_ticks: int | None = None
    boot_id: str | None = None

    start = StartOf[StartStamp]("process_start_time", "process_start_ticks")

    @property
    def url(self) -> str:
        return url_for(self.port)

    @property
    def open_url(self) -> str:
        """The URL to open: the page, with the token that lets this browser in (a secret: for the
        user who started the dashboard, shown by ``synclease dashboard``, never logged)."""
        return f"{self.url}?token={self.token}"

    @property
    def claim(self) -> Claim:
        """What the live self-report of this dashboard must agree with."""
        return Claim(
            family=FAMILY,
            pid=self.pid,
            port=self.port,
            process_start_time=self.start,
            project=self.project,
        )

    def is_same(self, other: DashboardRecord) -> bool:
        """The same dashboard instance: same process, port and token."""
        mine = (self.pid, self.port, self.token, self.process_start_time)
        return mine == (other.pid, other.port, other.token, other.process_start_time)


@record
class RecordEntry:
    """The record as read: ``record`` when trusted, else ``problem`` (``missing``, ``not_json``, ...)."""

    path: Path
    record: DashboardRecord | None
    problem: str | None = None
    detail: str = ""


def url_for(port: int) -> str:
    return f"http://{LOOPBACK}:{port}/"


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


def encode(record: DashboardRecord) -> bytes:
    return dump(
        {
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
            "process_start_ticks": record.process_start_ticks,
            "boot_id": record.boot_id,
        }
    )


def decode(data: bytes) -> DashboardRecord:
    """Parse and validate a record; any problem is a :class:`CodecError`. Unknown fields are dropped."""
    doc = load_object(data, MAX_DASHBOARD_RECORD_BYTES)
    check_header(doc, DASHBOARD_SCHEMA, DASHBOARD_SCHEMA_VERSION)
    if doc.get("daemon_family") != FAMILY:
        raise CodecError("bad_field", "daemon_family")
    fields = Strict(doc)
    port = fields.integer("port", DASHBOARD_PORT_RANGE.start, DASHBOARD_PORT_RANGE.stop - 1)
    if doc.get("url") != url_for(port):
        raise CodecError("bad_field", "url")
    return DashboardRecord(
        project=fields.text("project"),
        port=port,
        pid=fields.integer("pid", 1, MAX_PID),
        process_start_time=fields.number("process_start_time", 0.0, MAX_START_TIME),
        started_at=fields.time("started_at"),
        package_version=fields.text("package_version", 64),
        token=fields.text("token", MAX_TOKEN_CHARS),
        process_start_ticks=fields.optional_integer("process_start_ticks", 0, 2**62),
        boot_id=fields.optional_text("boot_id", 64),
    )
