"""``/api/health``: what a listener says of itself, parsed leniently, and the one agreement rule.

Whatever answered may be one of ours, a legacy daemon, a dashboard, or a hostile program, so every
field is checked on its own (:class:`~synclease.core.codec.Lenient`) and a wrong-typed or oversized one
becomes None; the rest survive. A self-report is a claim, never proof: :func:`mismatches` compares it
with what a record of ours (a lease, a dashboard record) says, and the callers decide.
"""

from __future__ import annotations

from datetime import datetime

from synclease.core.codec import MAX_PID, MAX_START_TIME, Lenient
from synclease.core.constants import SYNC
from synclease.core.identity import Start, StartOf, StartStamp, same_start
from synclease.core.lease import LeaseRecord
from synclease.core.record import record

MAX_PORT = 65535


@record(kw_only=True)
class HealthReport:
    """A parsed ``/api/health`` self-report. Claims, not proof: every field may be absent (None).

    ``sync_like`` is True when the listener presents itself as a sync daemon: ``daemon_family`` is
    ``"sync"``, or (legacy, pre-lease daemons) there is no family at all but both a
    ``protocol_version`` and a ``package_version``.
    """

    family: str | None = None
    sync_like: bool = False
    instance_id: str | None = None
    scope_id: str | None = None
    daemon_root: str | None = None
    pid: int | None = None
    port: int | None = None
    process_start_time: float | None = None
    process_start_ticks: int | None = None
    boot_id: str | None = None
    package_version: str | None = None
    protocol_version: int | None = None
    started_at: datetime | None = None
    lease_state: str | None = None
    lease_renewed_at: datetime | None = None
    lease_expires_at: datetime | None = None
    sync_running: bool | None = None
    queue_depth: int | None = None
    last_sync: datetime | None = None
    consecutive_failures: int | None = None
    auth_problem: bool | None = None
    work_in_flight: bool | None = None
    lease_write_error: str | None = None
    dead_letters: int | None = None
    auth_scope: str | None = None
    server_url: str | None = None
    session_id: str | None = None
    queue_db_path: str | None = None
    project: str | None = None

    start = StartOf[StartStamp | None]("process_start_time", "process_start_ticks")


def is_sync_like(doc: Lenient, protocol_version: int | None, package_version: str | None) -> bool:
    """A sync self-report: family ``"sync"``, or no family (absent or null) and both versions (legacy).

    A family of any other value or type is not sync-like, whatever else the document says.
    """
    family = doc.doc.get("daemon_family")
    if family is not None:
        return isinstance(family, str) and family == SYNC
    return protocol_version is not None and package_version is not None


def parse_health(document: object) -> HealthReport | None:
    """The self-report in ``document`` (a decoded JSON value), or None when it is not a JSON object."""
    if not isinstance(document, dict):
        return None
    doc = Lenient(document)
    lease, sync = doc.section("lease"), doc.section("sync")
    protocol_version = doc.integer("protocol_version", 0, 1_000_000)
    package_version = doc.text("package_version", 64)
    return HealthReport(
        family=doc.text("daemon_family", 64),
        sync_like=is_sync_like(doc, protocol_version, package_version),
        instance_id=doc.text("instance_id", 64),
        scope_id=doc.text("scope_id", 128),
        daemon_root=doc.text("daemon_root"),
        pid=doc.integer("pid", 1, MAX_PID),
        port=doc.integer("port", 1, MAX_PORT),
        process_start_time=doc.number("process_start_time", 0.0, MAX_START_TIME),
        process_start_ticks=doc.integer("process_start_ticks", 0, 2**62),
        boot_id=doc.text("boot_id", 64),
        package_version=package_version,
        protocol_version=protocol_version,
        started_at=doc.time("started_at"),
        lease_state=lease.text("state", 32),
        lease_renewed_at=lease.time("renewed_at"),
        lease_expires_at=lease.time("expires_at"),
        sync_running=sync.boolean("running"),
        queue_depth=sync.integer("queue_depth", 0, 2**62),
        last_sync=sync.time("last_sync"),
        consecutive_failures=sync.integer("consecutive_failures", 0, 2**62),
        auth_problem=sync.boolean("auth_problem"),
        work_in_flight=sync.boolean("in_flight"),
        lease_write_error=lease.text("write_error", 32),
        dead_letters=sync.integer("dead_letters", 0, 2**62),
        auth_scope=doc.text("auth_scope"),
        server_url=doc.text("server_url"),
        session_id=doc.text("session_id", 64),
        queue_db_path=doc.text("queue_db_path"),
        project=doc.text("project"),
    )


# --- the agreement rule -------------------------------------------------------------------------


@record(kw_only=True)
class Claim:
    """Who a record of ours says is listening: a self-report agrees only if it names the same."""

    family: str
    pid: int
    port: int
    process_start_time: Start
    instance_id: str | None = None
    scope_id: str | None = None
    project: str | None = None


def lease_claim(lease: LeaseRecord) -> Claim:
    return Claim(
        family=lease.family,
        pid=lease.pid,
        port=lease.port,
        process_start_time=lease.start,
        instance_id=lease.instance_id,
        scope_id=lease.scope_id,
    )


def mismatches(report: HealthReport, claim: Claim) -> tuple[str, ...]:
    """The fields on which the self-report and the claim disagree (empty: they agree).

    Family, pid, port and process start time always count; instance, scope and project count when
    the claim names them. An absent field in the report is a disagreement, never a pass.
    """
    checks: list[tuple[str, bool]] = [("daemon_family", report.family == claim.family)]
    if claim.instance_id is not None:
        checks.append(("instance_id", report.instance_id == claim.instance_id))
    if claim.scope_id is not None:
        checks.append(("scope_id", report.scope_id == claim.scope_id))
    checks += [
        ("pid", report.pid == claim.pid),
        ("port", report.port == claim.port),
        (
            "process_start_time",
            report.start is not None and same_start(claim.process_start_time, report.start),
        ),
    ]
    if claim.project is not None:
        checks.append(("project", report.project == claim.project))
    return tuple(name for name, ok in checks if not ok)


def agrees(report: HealthReport | None, claim: Claim) -> bool:
    return report is not None and not mismatches(report, claim)
