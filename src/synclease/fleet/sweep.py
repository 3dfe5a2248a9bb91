"""Sweep: act on a survey. Escalate each chosen candidate in parallel, remove stale lease files,
then verify what really happened. The result is data: ``swept``, ``skipped``, ``failed``.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from synclease import liveness
from synclease.clock import Clock
from synclease.constants import SYNC_PORT_RANGE
from synclease.fleet.escalate import Ops, Outcome, Target, escalate
from synclease.fleet.model import CleanupClass, IdentityRecord, StaleLease
from synclease.fleet.osops import RealOps, port_closed_by
from synclease.fleet.survey import Survey, judge_lease
from synclease.lease.store import LeaseStore

STEP_TIMEOUT_SECONDS = 1.0
MAX_PARALLEL = 32


@dataclass
class SweepResult:
    swept: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    leases_removed: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "swept": self.swept,
            "skipped": self.skipped,
            "failed": self.failed,
            "leases_removed": self.leases_removed,
        }


def _target(record: IdentityRecord, survey: Survey) -> Target | None:
    if record.pid is None or record.process_start_time is None:
        return None
    entry = survey.lease_entry(record.instance_id) if record.lease_present else None
    lease = entry.lease if entry else None
    token = (
        lease.token if lease is not None and lease.pid == record.pid and lease.port == record.port else None
    )
    return Target(record.pid, record.port, record.process_start_time, record.instance_id, token)


def _skip(record: IdentityRecord) -> dict[str, Any]:
    return {
        "pid": record.pid,
        "port": record.port,
        "instance_id": record.instance_id,
        "cleanup_class": record.cleanup_class.value,
        "skip_reason": record.skip_reason.value if record.skip_reason else None,
    }


def _failed(record: IdentityRecord, reason: str) -> dict[str, Any]:
    return {
        "pid": record.pid,
        "port": record.port,
        "instance_id": record.instance_id,
        "failure_reason": reason,
    }


def _clean_one(record: IdentityRecord, survey: Survey, ops: Ops, family_range: range) -> tuple[str, Any]:
    target = _target(record, survey)
    if target is None:
        return "failed", _failed(record, "missing_pid" if record.pid is None else "unknown_start_time")
    outcome: Outcome = escalate(target, family_range, ops, STEP_TIMEOUT_SECONDS)
    if not outcome.ok:
        return "failed", _failed(record, outcome.failure or "unknown")
    if outcome.path is None:
        # Gone before any step of ours took effect (another sweep got there first, or it left by
        # itself): neither swept by us nor a failure.
        return "gone", None
    if not port_closed_by(target.pid, target.port):
        return "failed", _failed(record, "still_listening")
    return "swept", {
        "pid": record.pid,
        "port": record.port,
        "instance_id": record.instance_id,
        "package_version": record.package_version,
        "cleanup_path": outcome.path.value,
        "reason": "expired_lease" if record.skip_reason is None else record.skip_reason.value,
    }


def _remove_stale(
    store: LeaseStore, verdict: StaleLease, survey: Survey, clock: Clock
) -> dict[str, Any] | None:
    """Re-judge right before deleting: the file is removed only if its holder is still provably gone."""
    entry = survey.lease_entry(verdict.instance_id)
    if entry is None:
        return None
    fresh = store.read_path(entry.path)
    if fresh.lease is None or entry.lease is None or fresh.lease.token != entry.lease.token:
        return None
    again = judge_lease(store, fresh, set(), clock)
    if not again.stale or not store.delete_stale(fresh):
        return None
    return {
        "instance_id": verdict.instance_id,
        "pid": verdict.pid,
        "port": verdict.port,
        "reason": again.reason.value,
    }


def sweep(
    survey: Survey,
    store: LeaseStore,
    clock: Clock,
    classes: Collection[CleanupClass],
    ops: Ops | None = None,
) -> SweepResult:
    """Clean records whose class is in ``classes`` (never ``never_touch``, never the singleton)."""
    ops = ops or RealOps()
    family_range = range(
        max(SYNC_PORT_RANGE.start, survey.ctx.port_range.start),
        min(SYNC_PORT_RANGE.stop, survey.ctx.port_range.stop),
    )
    result = SweepResult()
    chosen = [
        r
        for r in survey.orphans
        if r.cleanup_class in classes and r.cleanup_class is not CleanupClass.NEVER_TOUCH
    ]
    result.skipped = [_skip(r) for r in survey.orphans + survey.ignored if r not in chosen]
    if chosen:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(chosen))) as pool:
            for kind, item in pool.map(lambda r: _clean_one(r, survey, ops, family_range), chosen):
                if kind == "swept":
                    result.swept.append(item)
                elif kind == "failed":
                    result.failed.append(item)
    for record in chosen:
        entry = survey.lease_entry(record.instance_id) if record.lease_present else None
        if entry is not None and entry.lease is not None and record.pid == entry.lease.pid:
            _drop_dead_lease(store, entry.path)
    for verdict in survey.lease_verdicts:
        if verdict.stale:
            removed = _remove_stale(store, verdict, survey, clock)
            if removed is not None:
                result.leases_removed.append(removed)
    return result


def _drop_dead_lease(store: LeaseStore, path: Any, timeout: float = STEP_TIMEOUT_SECONDS) -> None:
    """After a kill the daemon could not delete its own lease: remove it once its holder lock is free.

    A killed multi-threaded process shows as a zombie before its last thread has closed its files, so
    the kernel may drop the lock a moment after the process looks gone: wait for it, bounded."""
    entry = store.read_path(path)
    if entry.lease is None or liveness.pid_alive(entry.lease.pid):
        return
    lock_path = store.root.holder_lock_path(entry.instance_id)
    deadline = time.monotonic() + timeout
    while liveness.probe_holder_lock(lock_path) is False:  # None: no lock file, the PID proof stands
        if time.monotonic() >= deadline:
            return
        time.sleep(0.01)
    store.delete_stale(entry)
