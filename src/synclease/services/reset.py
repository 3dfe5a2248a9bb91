"""``auth doctor --reset [--force]``: survey, then sweep under the singleton lock.

The survey runs *outside* the lock (a slow neighbour or a y/N prompt never holds it, so a concurrent
``sync start`` never fails with "lock busy"); the lock is held only to re-verify and act: a candidate
that became the recorded singleton meanwhile is left alone, and every step re-checks its target.
"""

from __future__ import annotations

from collections.abc import Callable

from synclease.adapters.lease_store import LeaseStore
from synclease.core.actor import Actor
from synclease.core.clock import Clock
from synclease.core.fleet import CleanupClass, IdentityRecord, Survey
from synclease.core.outcomes import SweepResult
from synclease.core.record import record, replace
from synclease.services.survey import survey
from synclease.services.sweep import InFlight, sweep


@record
class ResetResult:
    before: Survey
    result: SweepResult
    after: Survey


def _without_singleton(found: Survey, instance_id: str | None, pid: int | None) -> Survey:
    """The survey minus any candidate that is now the recorded singleton (by instance or pid)."""
    records = tuple(
        r
        for r in found.records
        if r.is_recorded_singleton
        or not ((instance_id and r.instance_id == instance_id) or (pid and r.pid == pid))
    )
    return replace(found, records=records)


def reset(
    store: LeaseStore,
    clock: Clock,
    port_range: range,
    *,
    force: bool,
    confirm: Callable[[list[IdentityRecord]], bool] | None = None,
    by: Actor | None = None,
) -> ResetResult:
    """Sweep ``safe_auto`` daemons and stale leases; ``operator_required`` ones too with ``force`` or
    when ``confirm`` (asked outside the lock) says yes."""
    before = survey(store, clock, port_range)
    classes = {CleanupClass.SAFE_AUTO}
    manual = [r for r in before.orphans if r.cleanup_class is CleanupClass.OPERATOR_REQUIRED]
    if force or (manual and confirm is not None and confirm(manual)):
        classes.add(CleanupClass.OPERATOR_REQUIRED)
    policy = InFlight.FORCE if force else InFlight.NO_KILL
    with store.singleton_lock():
        record = store.read_singleton().record
        current = before if record is None else _without_singleton(before, record.instance_id, record.pid)
        result = sweep(current, store, clock, classes, in_flight=policy, by=by)
    return ResetResult(before, result, survey(store, clock, port_range))
