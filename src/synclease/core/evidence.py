"""The evidence a classification is decided on, gathered once from an observation and its context.

Which root the listener belongs to (this one, or another its self-report names), which lease of that
root belongs to it, whether it is that root's recorded singleton, and on which fields the self-report,
the lease and the OS disagree. The table that decides on it is :mod:`.classify`.
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
from synclease.core.lease import LeaseEntry, LeaseRecord, SingletonRecord
from synclease.core.record import record
from synclease.core.roots import ROOT_NOT_NAMED, ROOT_NOT_READ, RootView


@record
class Evidence:
    """``report`` is the self-report when the listener speaks a family (sync-like, or names a family),
    else None: an answer we do not understand is no self-report. ``entry`` is the lease file that
    belongs to the listener (by self-reported instance_id, else by port and holder), if any, in the
    listener's root: ``other_root`` is that root when the self-report names another one (None: this
    root), and then ``entry`` and ``singleton`` are judged against its records.
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
    other_root: RootView | None = None

    # --- the facts the table's rows are stated in (each reads the evidence, never another row) -----

    @property
    def in_range(self) -> bool:
        return self.obs.port in self.ctx.port_range

    @property
    def other_family(self) -> bool:
        """It names a daemon family, and not the governed one (a legacy report naming none is judged
        by the rows below: for another family than sync it does not speak for the lease holder)."""
        report = self.report
        return report is not None and report.family is not None and report.family != self.ctx.family.name

    @property
    def claimed(self) -> bool:
        """It presents itself as a sync daemon, or a lease of its root names it."""
        return self.sync_like or self.entry is not None

    @property
    def other_uid(self) -> bool:
        """The OS says it runs under another uid than ours (unknown on either side: not known to)."""
        uid, mine = self.listener.uid, self.ctx.uid
        return uid is not None and mine is not None and uid != mine

    @property
    def root_readable(self) -> bool:
        """Its root is this one, or another that was read safely."""
        return self.other_root is None or self.other_root.problem is None

    @property
    def other_namespace(self) -> bool:
        """Its self-reported PID is not the process the OS shows here on its port, and names no process
        here or one with another start (ADR 0017): it reports a PID of another PID namespace (one
        nested in ours, where the OS shows us its PID here, or one we cannot see into, e.g. a container
        sharing our loopback). We can neither prove nor signal it."""
        report = self.report
        if not self.sync_like or report is None or report.pid is None or self.listener.pid == report.pid:
            return False
        seen = self.obs.reported_process  # the reported PID as seen here (a process here that merely
        # does not hold the socket is an identity mismatch, not another namespace)
        if seen is None:
            return False
        if not seen.exists:
            return True
        start = report.start
        return start is not None and seen.start is not None and not same_start(start, seen.start)

    @property
    def agrees(self) -> bool:
        """A readable lease, and self-report, lease and OS agree on every field compared."""
        return self.lease is not None and not self.mismatches

    @property
    def expired(self) -> bool:
        return self.lease_status is LeaseStatus.EXPIRED

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


def _lease_vs_scope(
    lease: LeaseRecord, family: Family, scope_id: str | None, daemon_root: str
) -> tuple[str, ...]:
    checks = (
        ("daemon_family", lease.family == family.name),
        ("scope_id", lease.scope_id == scope_id),
        ("daemon_root", lease.daemon_root == daemon_root),
    )
    return tuple(name for name, ok in checks if not ok)


def names_other_root(report: HealthReport | None, ctx: FleetContext) -> bool:
    """A self-report of the governed family naming another scope (or, with no scope, another root
    path) than ours."""
    if report is None or not of_family(report, ctx.family):
        return False
    if report.scope_id is not None:
        return report.scope_id != ctx.scope_id
    return report.daemon_root is not None and report.daemon_root != ctx.daemon_root


def _other_root(report: HealthReport | None, ctx: FleetContext) -> RootView | None:
    """The other root the listener belongs to, as read; None when it belongs to this one."""
    if report is None or not names_other_root(report, ctx):
        return None
    if report.daemon_root is None:
        return RootView(path="", scope_id=None, problem=ROOT_NOT_NAMED)
    found = ctx.root(report.daemon_root)
    return found or RootView(path=report.daemon_root, scope_id=None, problem=ROOT_NOT_READ)


def _is_singleton(
    obs: Observation, singleton: SingletonRecord | None, entry: LeaseEntry | None, family: Family
) -> bool:
    """Any positive evidence that the listener is the recorded singleton: the self-report or the
    lease names its instance, or the OS shows its PID on its port."""
    record = singleton
    if record is None:
        return False
    report = obs.health
    if of_family(report, family) and report is not None and report.instance_id == record.instance_id:
        return True
    if entry is not None and entry.instance_id == record.instance_id:
        return True
    return obs.listener.pid is not None and (obs.listener.pid, obs.port) == (record.pid, record.port)


def gather(obs: Observation, ctx: FleetContext) -> Evidence:
    report = _speaks(obs.health)
    other = _other_root(report, ctx)
    scope_id: str | None
    if other is None:
        leases, singleton, scope_id, daemon_root = ctx.leases, ctx.singleton, ctx.scope_id, ctx.daemon_root
    else:
        leases, singleton, scope_id, daemon_root = other.leases, other.singleton, other.scope_id, other.path
    entry = find_lease(obs, leases, ctx.family)
    lease = None if entry is None else entry.lease
    listener = obs.listener
    return Evidence(
        obs=obs,
        ctx=ctx,
        report=report,
        entry=entry,
        other_root=other,
        singleton=_is_singleton(obs, singleton, entry, ctx.family),
        report_vs_lease=None if report is None or lease is None else mismatches(report, lease_claim(lease)),
        report_vs_listener=(
            None if report is None else listener_mismatches(report.pid, report.port, report.start, listener)
        ),
        lease_vs_listener=(
            None if lease is None else listener_mismatches(lease.pid, lease.port, lease.start, listener)
        ),
        lease_vs_scope=None if lease is None else _lease_vs_scope(lease, ctx.family, scope_id, daemon_root),
    )
