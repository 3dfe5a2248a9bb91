"""Classify a listener by proof: the classification table, first match wins.

``classify`` first gathers the evidence (:class:`~synclease.core.evidence.Evidence`: the lease that
belongs to the listener, and which of self-report, lease and OS disagree), then walks :data:`TABLE`
row by row. ``safe_auto`` is what is left when no row matched, which happens only when every proof
holds: see ``docs/adr/0003-classification-table.md``.

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
from synclease.core.identity import HolderVerdict, ProcessFacts, judge_holder, same_start
from synclease.core.lease import LeaseEntry, is_expired

# --- the table ----------------------------------------------------------------------------------


def _out_of_range(ev: Evidence) -> bool:
    return ev.obs.port not in ev.ctx.port_range


def _other_family(ev: Evidence) -> bool:
    return ev.report is not None and ev.report.family is not None and ev.report.family != ev.ctx.family.name


def _third_party(ev: Evidence) -> bool:
    return not ev.sync_like and ev.entry is None


def _recorded_singleton(ev: Evidence) -> bool:
    return ev.singleton


def _other_pid_namespace(ev: Evidence) -> bool:
    """A sync daemon in range whose self-reported PID is not the process the OS shows here on its port:
    the OS shows another PID (it sees itself in a PID namespace nested in ours), or no owner at all
    while the reported PID names no process here, or another one (it lives in a PID namespace we cannot
    see into, e.g. a container sharing our loopback). We can neither prove nor signal it."""
    report = ev.report
    if ev.obs.port not in ev.ctx.port_range or report is None or not report.sync_like or report.pid is None:
        return False
    if ev.listener.pid is not None:
        return ev.listener.pid != report.pid
    seen = ev.obs.reported_process
    if seen is None:
        return False
    if not seen.exists:
        return True
    return report.start is not None and seen.start is not None and not same_start(report.start, seen.start)


def _missing_pid(ev: Evidence) -> bool:
    return ev.listener.pid is None


def _cross_root(ev: Evidence) -> bool:
    report = ev.report
    if report is None or not ev.sync_like:
        return False
    if report.scope_id is not None:
        return report.scope_id != ev.ctx.scope_id
    return report.daemon_root is not None and report.daemon_root != ev.ctx.daemon_root


def _no_lease(ev: Evidence) -> bool:
    return ev.entry is None


def _unresponsive(ev: Evidence) -> bool:
    return not ev.sync_like


def _identity_mismatch(ev: Evidence) -> bool:
    return ev.lease is None or bool(ev.mismatches)


def _lease_live(ev: Evidence) -> bool:
    return ev.lease is None or not is_expired(ev.lease, ev.ctx.now)


Rule = tuple[Callable[[Evidence], bool], CleanupClass, SkipReason]

#: The classification table (ADR 0003; ``other_pid_namespace``: ADR 0017), in order; ``safe_auto`` is
#: what no row matched. Each predicate may assume that every row before it did not match.
TABLE: tuple[Rule, ...] = (
    (_out_of_range, CleanupClass.NEVER_TOUCH, SkipReason.OUT_OF_RANGE),
    (_other_family, CleanupClass.NEVER_TOUCH, SkipReason.OTHER_FAMILY),
    (_third_party, CleanupClass.NEVER_TOUCH, SkipReason.THIRD_PARTY),
    (_recorded_singleton, CleanupClass.NEVER_TOUCH, SkipReason.RECORDED_SINGLETON),
    (_other_pid_namespace, CleanupClass.NEVER_TOUCH, SkipReason.OTHER_PID_NAMESPACE),
    (_missing_pid, CleanupClass.OPERATOR_REQUIRED, SkipReason.MISSING_PID),
    (_cross_root, CleanupClass.OPERATOR_REQUIRED, SkipReason.CROSS_ROOT),
    (_no_lease, CleanupClass.OPERATOR_REQUIRED, SkipReason.NO_LEASE),
    (_unresponsive, CleanupClass.OPERATOR_REQUIRED, SkipReason.UNRESPONSIVE),
    (_identity_mismatch, CleanupClass.OPERATOR_REQUIRED, SkipReason.IDENTITY_MISMATCH),
    (_lease_live, CleanupClass.OPERATOR_REQUIRED, SkipReason.LEASE_LIVE),
)


def decide(ev: Evidence) -> tuple[CleanupClass, SkipReason | None]:
    for matches, cleanup_class, reason in TABLE:
        if matches(ev):
            return cleanup_class, reason
    return CleanupClass.SAFE_AUTO, None


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
        health_error=ev.obs.health_error,
        mismatches=ev.mismatches,
        cleanup_class=cleanup_class,
        skip_reason=reason,
    )


def classify(obs: Observation, ctx: FleetContext) -> IdentityRecord:
    """The identity record of one listener under the classification table (first matching row wins)."""
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
