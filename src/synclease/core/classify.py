"""Classify a listener by proof: the classification table, one row per outcome.

``classify`` first gathers the evidence (:class:`~synclease.core.evidence.Evidence`: the root the
listener belongs to, the lease of that root that belongs to it, and which of self-report, lease and OS
disagree), then finds the one row of :data:`TABLE` whose condition holds. Every row states its whole
condition (the facts it is stated in are properties of the evidence), so the rows exclude each other:
a row can be read, added or moved on its own, and a property test (``tests/test_classify.py``) shows
that every listener matches exactly one row. ``safe_auto`` is a row like the others: the one where
every proof holds. See ``docs/adr/0003-classification-table.md`` and ``docs/adr/0016-every-root.md``.

Adding a row: state the facts it needs as evidence properties, write its whole condition, and narrow
the row(s) it takes listeners from with the negation of its new fact; the property test then proves
the table still has no overlap and no gap.

``judge_orphan_lease`` judges the lease records that no listener answers for.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime

from synclease.core.evidence import Evidence, gather
from synclease.core.fleet import (
    CleanupClass,
    FleetContext,
    IdentityRecord,
    IdentitySource,
    LeaseStatus,
    LeaseVerdictReason,
    Observation,
    SkipReason,
    StaleLease,
    lease_status,
)
from synclease.core.identity import HolderVerdict, ProcessFacts, judge_holder
from synclease.core.lease import LeaseEntry
from synclease.core.record import record

# --- the conditions the rows share, by name ---------------------------------------------------------


def sync_daemon(ev: Evidence) -> bool:
    """In our range, names no other family, and presents itself as a daemon of the governed family or
    a lease names it."""
    return ev.in_range and not ev.other_family and ev.claimed


def ours(ev: Evidence) -> bool:
    """A sync daemon that the OS does not show under another uid."""
    return sync_daemon(ev) and not ev.other_uid


def here(ev: Evidence) -> bool:
    """Ours, and served from our PID namespace (its reported PID is the process seen here)."""
    return ours(ev) and not ev.other_namespace


def judgeable(ev: Evidence) -> bool:
    """A sync daemon of our uid and PID namespace whose root (this one or another) could be read
    safely."""
    return here(ev) and ev.root_readable


def candidate(ev: Evidence) -> bool:
    """Judgeable, not its root's recorded singleton, and the OS names its PID."""
    return judgeable(ev) and not ev.singleton and ev.listener.pid is not None


def answered(ev: Evidence) -> bool:
    """A candidate with a lease in its root that answered ``/api/health`` as a sync daemon."""
    return candidate(ev) and ev.entry is not None and ev.sync_like


# --- the table ------------------------------------------------------------------------------------


@record
class Row:
    when: Callable[[Evidence], bool]
    cleanup_class: CleanupClass
    #: None only for ``safe_auto``.
    reason: SkipReason | None


NEVER, OPERATOR, SAFE = CleanupClass.NEVER_TOUCH, CleanupClass.OPERATOR_REQUIRED, CleanupClass.SAFE_AUTO

#: The classification table (ADR 0003, ADR 0016; ``other_pid_namespace``: ADR 0017): every row's whole
#: condition, exactly one matches.
TABLE: tuple[Row, ...] = (
    Row(lambda ev: not ev.in_range, NEVER, SkipReason.OUT_OF_RANGE),
    Row(lambda ev: ev.in_range and ev.other_family, NEVER, SkipReason.OTHER_FAMILY),
    Row(lambda ev: ev.in_range and not ev.other_family and not ev.claimed, NEVER, SkipReason.THIRD_PARTY),
    Row(lambda ev: sync_daemon(ev) and ev.other_uid, NEVER, SkipReason.OTHER_UID),
    # A daemon we can neither prove nor signal from here (ADR 0017): never a failure, never advice.
    Row(lambda ev: ours(ev) and ev.other_namespace, NEVER, SkipReason.OTHER_PID_NAMESPACE),
    Row(lambda ev: here(ev) and not ev.root_readable, OPERATOR, SkipReason.CROSS_ROOT),
    Row(lambda ev: judgeable(ev) and ev.singleton, NEVER, SkipReason.RECORDED_SINGLETON),
    Row(
        lambda ev: judgeable(ev) and not ev.singleton and ev.listener.pid is None,
        OPERATOR,
        SkipReason.MISSING_PID,
    ),
    Row(lambda ev: candidate(ev) and ev.entry is None, OPERATOR, SkipReason.NO_LEASE),
    Row(
        lambda ev: candidate(ev) and ev.entry is not None and not ev.sync_like,
        OPERATOR,
        SkipReason.UNRESPONSIVE,
    ),
    Row(lambda ev: answered(ev) and not ev.agrees, OPERATOR, SkipReason.IDENTITY_MISMATCH),
    Row(lambda ev: answered(ev) and ev.agrees and not ev.expired, OPERATOR, SkipReason.LEASE_LIVE),
    Row(lambda ev: answered(ev) and ev.agrees and ev.expired, SAFE, None),
)


def matching(ev: Evidence) -> list[Row]:
    """Every row whose condition holds (exactly one, as the property test shows)."""
    return [row for row in TABLE if row.when(ev)]


def decide(ev: Evidence) -> tuple[CleanupClass, SkipReason | None]:
    for row in TABLE:
        if row.when(ev):
            return row.cleanup_class, row.reason
    raise AssertionError("the classification table has a gap")  # excluded by the property test


def _identity_source(ev: Evidence) -> IdentitySource:
    if ev.report is not None:
        return IdentitySource.SELF_REPORT
    return IdentitySource.LEASE if ev.lease is not None else IdentitySource.LISTENER


def _record(ev: Evidence, cleanup_class: CleanupClass, reason: SkipReason | None) -> IdentityRecord:
    source = _identity_source(ev)
    report, lease = ev.report, ev.lease
    described = report if source is IdentitySource.SELF_REPORT else lease
    family = report.family if report is not None else (lease.family if lease is not None else None)
    return IdentityRecord(
        port=ev.obs.port,
        pid=ev.listener.pid,
        process_start_time=ev.listener.pid_start_time,
        process_start_ticks=ev.listener.pid_start_ticks,
        boot_id=ev.listener.boot_id,
        work_in_flight=bool(ev.report is not None and ev.report.work_in_flight),
        daemon_family=family,
        instance_id=getattr(described, "instance_id", None),
        protocol_version=getattr(described, "protocol_version", None),
        package_version=getattr(described, "package_version", None),
        scope_id=getattr(described, "scope_id", None),
        daemon_root=getattr(described, "daemon_root", None),
        queue_db_path=getattr(described, "queue_db_path", None),
        auth_scope=getattr(described, "auth_scope", None),
        server_url=getattr(described, "server_url", None),
        lease_present=ev.entry is not None,
        lease_state=ev.lease_status,
        lease_renewed_at=None if lease is None else lease.renewed_at,
        lease_expires_at=None if lease is None else lease.expires_at,
        lease_problem=None if ev.entry is None else ev.entry.problem,
        identity_source=source,
        self_report_matches_lease=None if ev.report_vs_lease is None else not ev.report_vs_lease,
        self_report_matches_listener=None if ev.report_vs_listener is None else not ev.report_vs_listener,
        is_recorded_singleton=ev.singleton,
        other_root=None if ev.other_root is None else ev.other_root.path or None,
        root_problem=None if ev.other_root is None else ev.other_root.problem,
        health_error=ev.obs.health_error,
        mismatches=ev.mismatches,
        cleanup_class=cleanup_class,
        skip_reason=reason,
    )


def classify(obs: Observation, ctx: FleetContext) -> IdentityRecord:
    """The identity record of one listener under the classification table (its one matching row)."""
    evidence = gather(obs, ctx)
    cleanup_class, reason = decide(evidence)
    return _record(evidence, cleanup_class, reason)


def classify_all(observations: Iterable[Observation], ctx: FleetContext) -> list[IdentityRecord]:
    return [classify(obs, ctx) for obs in observations]


# --- leases nobody answers for ------------------------------------------------------------------


def unclaimed_leases(records: Iterable[IdentityRecord], leases: Sequence[LeaseEntry]) -> list[LeaseEntry]:
    """The lease files that no classified listener was matched to: input for :func:`judge_orphan_lease`."""
    claimed = {r.instance_id for r in records if r.lease_present and r.instance_id is not None}
    return [entry for entry in leases if entry.instance_id not in claimed]


_HOLDER_REASONS = {
    HolderVerdict.DEAD: LeaseVerdictReason.HOLDER_DEAD,
    HolderVerdict.PID_REUSED: LeaseVerdictReason.PID_REUSED,
    HolderVerdict.ALIVE: LeaseVerdictReason.HOLDER_ALIVE,
    HolderVerdict.UNKNOWN: LeaseVerdictReason.HOLDER_UNKNOWN,
}


def judge_orphan_lease(
    entry: LeaseEntry,
    lock_free: bool | None,
    process: ProcessFacts,
    listener_ports: Collection[int],
    now: datetime,
) -> StaleLease:
    """Judge a lease record no listener answers for, from its holder lock and its PID's facts.

    Stale (delete the file, signal nobody) only when :func:`judge_holder` proves the holder dead or its
    PID reused. Unreadable records are never judged stale: they are reported, not trusted.
    """
    lease = entry.lease
    if lease is None:
        return StaleLease(
            instance_id=entry.instance_id,
            path=entry.path,
            port=None,
            pid=None,
            lease_state=LeaseStatus.UNREADABLE,
            holder=None,
            stale=False,
            reason=LeaseVerdictReason.UNREADABLE,
            problem=entry.problem,
        )
    verdict = judge_holder(lease.start, lock_free, process)
    return StaleLease(
        instance_id=entry.instance_id,
        path=entry.path,
        port=lease.port,
        pid=lease.pid,
        lease_state=lease_status(entry, now),
        holder=verdict,
        stale=verdict.stale,
        reason=_HOLDER_REASONS[verdict],
        port_in_use=lease.port in listener_ports,
    )
