"""Survey: one scan of a family's range plus this root's leases of that family, classified. Reads only.

The thin sequence between the probe (:mod:`synclease.adapters.probe`), the pure engine
(:mod:`synclease.core.classify`) and the holder facts (:mod:`synclease.adapters.locks`,
:mod:`synclease.adapters.process`). Nothing here signals or deletes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime

from synclease.adapters import process
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.locks import probe_holder_lock
from synclease.adapters.other_root import MAX_OTHER_ROOTS, read_root
from synclease.adapters.probe import scan
from synclease.core.classify import classify_all, judge_orphan_lease, unclaimed_leases
from synclease.core.clock import Clock
from synclease.core.evidence import names_other_root
from synclease.core.family import get_family
from synclease.core.fleet import FleetContext, Observation, StaleLease, Survey
from synclease.core.identity import ProcessFacts
from synclease.core.lease import LeaseEntry
from synclease.core.record import replace
from synclease.core.roots import RootView


def read_context(store: LeaseStore, now: datetime, port_range: range) -> FleetContext:
    """This root's leases and singleton record of the store's family, as the context to classify a
    scan in."""
    return FleetContext(
        scope_id=store.root.scope_id,
        daemon_root=str(store.root.path),
        now=now,
        leases=tuple(store.list()),
        singleton=store.read_singleton().record,
        port_range=port_range,
        family=get_family(store.family),
        uid=os.geteuid(),
    )


def read_other_roots(observations: Sequence[Observation], ctx: FleetContext) -> tuple[RootView, ...]:
    """The other roots that listeners' self-reports name, each read once, read-only (at most
    :data:`MAX_OTHER_ROOTS`; a listener of a root left unread is ``cross_root``)."""
    named: dict[str, set[str]] = {}
    for obs in observations:
        report = obs.health
        if report is not None and names_other_root(report, ctx) and report.daemon_root is not None:
            ids = named.setdefault(report.daemon_root, set())
            if report.instance_id is not None:
                ids.add(report.instance_id)
    return tuple(read_root(path, ids) for path, ids in sorted(named.items())[:MAX_OTHER_ROOTS])


def judge_lease(store: LeaseStore, entry: LeaseEntry, listener_ports: set[int], clock: Clock) -> StaleLease:
    """Gather the holder facts for one unclaimed lease (lock probe, PID facts) and judge them."""
    lease = entry.lease
    if lease is None:
        return judge_orphan_lease(entry, None, ProcessFacts(exists=True), listener_ports, clock.now())
    lock_free = probe_holder_lock(store.root.holder_lock_path(lease.instance_id))
    return judge_orphan_lease(entry, lock_free, process.facts(lease.pid), listener_ports, clock.now())


def with_reported_process(obs: Observation) -> Observation:
    """``obs`` with the OS facts of the PID its self-report names, when the listener table shows no
    owner or another one: the classification tells another PID namespace from a process we may not
    inspect, or from a process here that does not hold the socket (an identity mismatch), by them."""
    report = obs.health
    if report is None or not report.sync_like or report.pid is None or obs.listener.pid == report.pid:
        return obs
    return replace(obs, reported_process=process.facts(report.pid))


def survey(store: LeaseStore, clock: Clock, port_range: range) -> Survey:
    ctx = read_context(store, clock.now(), port_range)
    claimed: dict[int, set[int]] = {}
    for entry in ctx.leases:
        if entry.lease is not None:
            claimed.setdefault(entry.lease.port, set()).add(entry.lease.pid)
    if ctx.singleton is not None:  # a claim too: "is this the recorded singleton?" needs its PID proven
        claimed.setdefault(ctx.singleton.port, set()).add(ctx.singleton.pid)
    result = scan(port_range, family=ctx.family, clock=clock, claimed_pids=claimed)
    ctx = replace(ctx, roots=read_other_roots(result.observations, ctx))
    records = tuple(classify_all([with_reported_process(obs) for obs in result.observations], ctx))
    listener_ports = {obs.port for obs in result.observations}
    verdicts = tuple(
        judge_lease(store, entry, listener_ports, clock) for entry in unclaimed_leases(records, ctx.leases)
    )
    return Survey(ctx, result, records, verdicts)
