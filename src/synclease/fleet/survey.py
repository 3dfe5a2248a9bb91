"""Survey: one scan of the family range plus this root's leases, classified. Reads only.

The thin orchestration between the probe adapter (:mod:`.probe`), the pure engine (:mod:`.classify`)
and the holder-lock adapter (:mod:`synclease.liveness`). Nothing here signals or deletes.
"""

from __future__ import annotations

from dataclasses import dataclass

from synclease import liveness
from synclease.clock import Clock
from synclease.fleet.classify import classify_all, judge_orphan_lease, unclaimed_leases
from synclease.fleet.model import CleanupClass, FleetContext, IdentityRecord, StaleLease
from synclease.fleet.probe import ScanResult, read_context, scan
from synclease.lease.holder import ProcessFacts
from synclease.lease.store import LeaseEntry, LeaseStore


@dataclass(frozen=True)
class Survey:
    ctx: FleetContext
    scan: ScanResult
    records: tuple[IdentityRecord, ...]
    lease_verdicts: tuple[StaleLease, ...]

    @property
    def singleton(self) -> IdentityRecord | None:
        return next((r for r in self.records if r.is_recorded_singleton), None)

    @property
    def orphans(self) -> list[IdentityRecord]:
        """Every sync-family candidate that is not the singleton."""
        return [
            r
            for r in self.records
            if not r.is_recorded_singleton and r.cleanup_class is not CleanupClass.NEVER_TOUCH
        ]

    @property
    def ignored(self) -> list[IdentityRecord]:
        return [
            r
            for r in self.records
            if not r.is_recorded_singleton and r.cleanup_class is CleanupClass.NEVER_TOUCH
        ]

    def lease_entry(self, instance_id: str | None) -> LeaseEntry | None:
        return next((e for e in self.ctx.leases if e.instance_id == instance_id), None)


def judge_lease(store: LeaseStore, entry: LeaseEntry, listener_ports: set[int], clock: Clock) -> StaleLease:
    """Gather the holder facts for one unclaimed lease (lock probe, PID facts) and judge them."""
    lease = entry.lease
    if lease is None:
        return judge_orphan_lease(entry, None, ProcessFacts(exists=True), listener_ports, clock.now())
    lock_free = liveness.probe_holder_lock(store.root.holder_lock_path(lease.instance_id))
    return judge_orphan_lease(
        entry, lock_free, liveness.process_facts(lease.pid), listener_ports, clock.now()
    )


def survey(store: LeaseStore, clock: Clock, port_range: range) -> Survey:
    ctx = read_context(store, clock.now(), port_range)
    claimed: dict[int, set[int]] = {}
    for entry in ctx.leases:
        if entry.lease is not None:
            claimed.setdefault(entry.lease.port, set()).add(entry.lease.pid)
    result = scan(port_range, clock=clock, claimed_pids=claimed)
    records = tuple(classify_all(result.observations, ctx))
    listener_ports = {obs.port for obs in result.observations}
    verdicts = tuple(
        judge_lease(store, entry, listener_ports, clock) for entry in unclaimed_leases(records, ctx.leases)
    )
    return Survey(ctx, result, records, verdicts)
