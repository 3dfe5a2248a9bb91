"""The evidence a classification is decided on, gathered once from an observation and its context.

Which lease belongs to the listener, whether it is the recorded singleton, and on which fields the
self-report, the lease and the OS disagree. The table that decides on it is :mod:`.classify`.
"""

from __future__ import annotations

from collections.abc import Sequence

from synclease.core.constants import SYNC
from synclease.core.family import SYNC_FAMILY, Family
from synclease.core.fleet import (
    FleetContext,
    LeaseStatus,
    Listener,
    Observation,
    lease_status,
)
from synclease.core.health import HealthReport, lease_claim, mismatches
from synclease.core.identity import Start, same_start
from synclease.core.lease import LeaseEntry, LeaseRecord
from synclease.core.record import record


@record
class Evidence:
    """``report`` is the self-report when the listener speaks a family (sync-like, or names a family),
    else None: an answer we do not understand is no self-report. ``entry`` is the lease file that
    belongs to the listener (by self-reported instance_id, else by port and holder), if any.
    """

    obs: Observation
    ctx: FleetContext
    report: HealthReport | None
    entry: LeaseEntry | None
    singleton: bool
    report_vs_lease: tuple[str, ...] | None
    report_vs_listener: tuple[str, ...] | None
    lease_vs_listener: tuple[str, ...] | None
    lease_vs_scope: tuple[str, ...] | None

    @property
    def listener(self) -> Listener:
        return self.obs.listener

    @property
    def lease(self) -> LeaseRecord | None:
        return None if self.entry is None else self.entry.lease

    @property
    def sync_like(self) -> bool:
        """The self-report presents the listener as a daemon of the governed family (for ``sync``,
        also a legacy report with no family)."""
        return of_family(self.report, self.ctx.family)

    @property
    def mismatches(self) -> tuple[str, ...]:
        pairs = (
            ("self_report~lease", self.report_vs_lease),
            ("self_report~listener", self.report_vs_listener),
            ("lease~listener", self.lease_vs_listener),
            ("lease~scope", self.lease_vs_scope),
        )
        return tuple(f"{name}:{pair}" for pair, names in pairs for name in names or ())

    @property
    def lease_status(self) -> LeaseStatus:
        return lease_status(self.entry, self.ctx.now)


def of_family(report: HealthReport | None, family: Family) -> bool:
    """Does ``report`` present its listener as a daemon of ``family``? A report naming a family is
    of that family; one naming none is a (legacy) sync daemon when it is sync-like."""
    if report is None:
        return False
    if report.family is not None:
        return report.family == family.name
    return report.sync_like and family.name == SYNC


def _speaks(health: HealthReport | None) -> HealthReport | None:
    if health is None or not (health.sync_like or health.family is not None):
        return None
    return health


def _holds_port(lease: LeaseRecord, listener: Listener) -> bool:
    """Could this lease's holder be the process listening on ``listener.port``? Unknown OS facts
    cannot rule it out; a known PID or start time that differs does."""
    if lease.port != listener.port:
        return False
    if listener.pid is None:
        return True
    if lease.pid != listener.pid:
        return False
    return listener.start is None or same_start(lease.start, listener.start)


def find_lease(
    obs: Observation, leases: Sequence[LeaseEntry], family: Family = SYNC_FAMILY
) -> LeaseEntry | None:
    """The lease file of the listener: by self-reported instance_id when a self-report of ``family``
    names one (readable or not; two files claiming it count as one unreadable entry), else the
    readable lease naming this port whose holder could be the listener (the latest renewed if several).
    """
    report = obs.health
    if of_family(report, family) and report is not None and report.instance_id is not None:
        named = [entry for entry in leases if entry.instance_id == report.instance_id]
        if len(named) > 1:  # e.g. a valid file and a hostile over-long name truncated to the same id
            return LeaseEntry(named[0].path, report.instance_id, None, "duplicate_instance")
        return named[0] if named else None
    candidates = [
        (entry.lease.renewed_at, entry.instance_id, entry)
        for entry in leases
        if entry.lease is not None and _holds_port(entry.lease, obs.listener)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda item: (item[0], item[1]))[2]


def listener_mismatches(
    pid: int | None, port: int | None, start: Start | None, listener: Listener
) -> tuple[str, ...]:
    """The fields on which a claimed pid, port and start time disagree with the OS listener."""
    checks = (
        ("pid", pid is not None and pid == listener.pid),
        ("port", port == listener.port),
        ("process_start_time", start is not None and same_start(start, listener.start)),
    )
    return tuple(name for name, ok in checks if not ok)


def _lease_vs_scope(lease: LeaseRecord, ctx: FleetContext) -> tuple[str, ...]:
    checks = (
        ("daemon_family", lease.family == ctx.family.name),
        ("scope_id", lease.scope_id == ctx.scope_id),
        ("daemon_root", lease.daemon_root == ctx.daemon_root),
    )
    return tuple(name for name, ok in checks if not ok)


def _is_singleton(obs: Observation, ctx: FleetContext, entry: LeaseEntry | None) -> bool:
    """Any positive evidence that the listener is the recorded singleton: the self-report or the
    lease names its instance, or the OS shows its PID on its port."""
    record = ctx.singleton
    if record is None:
        return False
    report = obs.health
    if of_family(report, ctx.family) and report is not None and report.instance_id == record.instance_id:
        return True
    if entry is not None and entry.instance_id == record.instance_id:
        return True
    return obs.listener.pid is not None and (obs.listener.pid, obs.port) == (record.pid, record.port)


def gather(obs: Observation, ctx: FleetContext) -> Evidence:
    report = _speaks(obs.health)
    entry = find_lease(obs, ctx.leases, ctx.family)
    lease = None if entry is None else entry.lease
    listener = obs.listener
    return Evidence(
        obs=obs,
        ctx=ctx,
        report=report,
        entry=entry,
        singleton=_is_singleton(obs, ctx, entry),
        report_vs_lease=None if report is None or lease is None else mismatches(report, lease_claim(lease)),
        report_vs_listener=(
            None if report is None else listener_mismatches(report.pid, report.port, report.start, listener)
        ),
        lease_vs_listener=(
            None if lease is None else listener_mismatches(lease.pid, lease.port, lease.start, listener)
        ),
        lease_vs_scope=None if lease is None else _lease_vs_scope(lease, ctx),
    )
