"""Sweep: act on a survey. Escalate the chosen candidates in one wave (every step for all of them at
once, one shared deadline per step: :func:`~synclease.core.escalate.escalate_wave`), drop the leases
of the daemons that ended in one shared wait, remove stale lease files, then verify what really
happened. The result is typed data (:mod:`synclease.core.outcomes`).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from pathlib import Path

from synclease.adapters import process
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.locks import probe_holder_lock
from synclease.adapters.other_root import ledger_writable
from synclease.adapters.root import DaemonRoot
from synclease.adapters.signals import InParallel, RealOps, port_closed_by
from synclease.core.actor import Actor
from synclease.core.clock import Clock, poll
from synclease.core.escalate import CleanupPath, Ops, Outcome, Target, escalate_wave
from synclease.core.fleet import CleanupClass, IdentityRecord, LeaseStatus, SkipReason, StaleLease, Survey
from synclease.core.ledger import MAX_ROOT_CHARS, EventEvidence, EventKind, is_printable
from synclease.core.outcomes import Failed, LeaseRemoved, Skipped, SweepResult, Swept
from synclease.core.reasons import ledger_reason
from synclease.core.record import replace
from synclease.services.history import Recorder
from synclease.services.retire import retire_body
from synclease.services.singleton import live_health
from synclease.services.survey import judge_lease

STEP_TIMEOUT_SECONDS = 1.0
LOCK_POLL_SECONDS = 0.01


class InFlight(enum.Enum):
    """What a sweep does with a daemon whose self-report says a batch is being uploaded."""

    #: The startup reaper: never signal it (it may still be asked politely, and then drains).
    SPARE = "spare"
    #: ``--reset``: SIGTERM lets it finish the batch and retire; never SIGKILL it.
    NO_KILL = "no_kill"
    #: ``--reset --force``: the operator decided.
    FORCE = "force"


class GuardedOps:
    """The escalation operations with the sweep's last-moment checks (each a veto of one step).

    * ``lease_renewed``: just before each signal the candidate's lease is read again; if it was renewed
      after the survey read it, the holder is alive (the sweeper's clock may have jumped forward), so
      it is left alone. A live holder renews at least every third of its TTL, so before the first
      signal the guard lets that much time pass since the survey: the answer is proof, not a race.
    * ``work_in_flight``: by :class:`InFlight` policy, from the survey's self-report and a fresh one.
    """

    def __init__(self, inner: Ops, store: LeaseStore, survey: Survey, clock: Clock, policy: InFlight) -> None:
        self.inner, self.store, self.survey, self.clock, self.policy = inner, store, survey, clock, policy
        self.started = clock.monotonic()

    def _record(self, target: Target) -> IdentityRecord | None:
        return next((r for r in self.survey.records if r.port == target.port and r.pid == target.pid), None)

    def _renewed(self, target: Target) -> bool:
        """Only for a lease the survey judged expired: a live one (``lease_live`` under ``--force``) is
        expected to be renewed, and the operator chose to clean it anyway."""
        record = self._record(target)
        entry = self.survey.lease_entry(target.instance_id)
        if (
            record is None
            or record.lease_state is not LeaseStatus.EXPIRED
            or entry is None
            or entry.lease is None
        ):
            return False
        seen = entry.lease
        wait = self.started + seen.ttl_seconds / 3 - self.clock.monotonic()
        if wait > 0:
            self.clock.sleep(wait)
        fresh = self.store.read_path(entry.path).lease  # this root's file, or the other root's
        # A ``draining`` write is the daemon answering our retire request, not a sign of life that
        # vetoes the next step (work in flight has its own veto below).
        return (
            fresh is not None
            and fresh.token == seen.token
            and fresh.renewed_at > seen.renewed_at
            and fresh.state != "draining"
        )

    def _in_flight(self, target: Target) -> bool:
        record = self._record(target)
        if record is not None and record.work_in_flight:
            return True
        entry = self.survey.lease_entry(target.instance_id)
        health = live_health(entry.lease) if entry is not None and entry.lease is not None else None
        return bool(health is not None and health.work_in_flight)

    def veto(self, target: Target, step: CleanupPath) -> str | None:
        reason = self.inner.veto(target, step)
        if reason is not None or step is CleanupPath.HTTP_RETIRE:
            return reason
        if self._renewed(target):
            return SkipReason.LEASE_RENEWED.value
        spare = self.policy is InFlight.SPARE or (
            self.policy is InFlight.NO_KILL and step is CleanupPath.KILL
        )
        if spare and self._in_flight(target):
            return SkipReason.WORK_IN_FLIGHT.value
        return None

    def retire(self, target: Target) -> bool:
        return self.inner.retire(target)

    def still_same(self, target: Target) -> bool:
        return self.inner.still_same(target)

    def signal(self, target: Target, step: CleanupPath) -> bool:
        return self.inner.signal(target, step)

    def wait_gone(self, target: Target, timeout: float) -> bool:
        return self.inner.wait_gone(target, timeout)


def _target(record: IdentityRecord, survey: Survey) -> Target | None:
    if record.pid is None or record.process_start_time is None:
        return None
    entry = survey.lease_entry(record.instance_id) if record.lease_present else None
    lease = entry.lease if entry else None
    token = (
        lease.token if lease is not None and lease.pid == record.pid and lease.port == record.port else None
    )
    assert record.start is not None
    return Target(record.pid, record.port, record.start, record.instance_id, token)


def _failed(record: IdentityRecord, reason: str) -> Failed:
    return Failed(record.pid, record.port, record.instance_id, reason)


def _clean_wave(
    chosen: Sequence[IdentityRecord], survey: Survey, ops: Ops, family_range: range, clock: Clock
) -> list[Swept | Failed | Skipped | None]:
    """Escalate every chosen candidate in one wave; per candidate, what became of it (None: it was
    gone before any step of ours took effect)."""
    items: list[Swept | Failed | Skipped | None] = [None] * len(chosen)
    targets: list[Target] = []
    at: list[int] = []
    for n, record in enumerate(chosen):
        target = _target(record, survey)
        if target is None:
            items[n] = _failed(record, "missing_pid" if record.pid is None else "unknown_start_time")
        else:
            targets.append(target)
            at.append(n)
    outcomes = escalate_wave(targets, family_range, ops, InParallel(ops, clock), STEP_TIMEOUT_SECONDS)
    for n, outcome in zip(at, outcomes, strict=True):
        items[n] = _judge(chosen[n], outcome)
    return items


def _judge(record: IdentityRecord, outcome: Outcome) -> Swept | Failed | Skipped | None:
    if outcome.vetoed is not None:
        veto = SkipReason(outcome.vetoed)
        return Skipped(record.pid, record.port, record.instance_id, record.cleanup_class, veto)
    if not outcome.ok:
        return _failed(record, outcome.failure or "unknown")
    if outcome.path is None:
        # Gone before any step of ours took effect (another sweep got there first, or it left by
        # itself): neither swept by us nor a failure.
        return None
    if not port_closed_by(outcome.target.pid, outcome.target.port):
        return _failed(record, "still_listening")
    reason = "expired_lease" if record.skip_reason is None else record.skip_reason.value
    swept = Swept(record.pid, record.port, record.instance_id, record.package_version, outcome.path, reason)
    return replace(swept, daemon_root=record.other_root)


def _remove_stale(
    store: LeaseStore, verdict: StaleLease, survey: Survey, clock: Clock
) -> LeaseRemoved | None:
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
    return LeaseRemoved(verdict.instance_id, verdict.pid, verdict.port, again.reason.value)


def _drop_dead_leases(store: LeaseStore, paths: Sequence[Path], clock: Clock) -> None:
    """After a kill a daemon could not delete its own lease: remove each once its holder lock is free.

    A killed multi-threaded process shows as a zombie before its last thread has closed its files, so
    the kernel may drop the lock a moment after the process looks gone: wait for all of them on one
    shared deadline (a lock that is still held then keeps its lease)."""
    entries = [store.read_path(path) for path in paths]
    dead = [e for e in entries if e.lease is not None and not process.facts(e.lease.pid).exists]

    def free(entry_id: str) -> bool:
        # None: no lock file, the PID proof stands; True: free. Only False (held) is waited on.
        return probe_holder_lock(store.root.holder_lock_path(entry_id)) is not False

    poll(
        clock,
        lambda: True if all(free(e.instance_id) for e in dead) else None,
        STEP_TIMEOUT_SECONDS,
        LOCK_POLL_SECONDS,
    )
    for entry in dead:
        if free(entry.instance_id):
            store.delete_stale(entry)


def _reason(record: IdentityRecord) -> str:
    return "expired_lease" if record.skip_reason is None else record.skip_reason.value


def sweep(
    survey: Survey,
    store: LeaseStore,
    clock: Clock,
    classes: Collection[CleanupClass],
    *,
    ops: Ops | None = None,
    in_flight: InFlight = InFlight.SPARE,
    by: Actor | None = None,
) -> SweepResult:
    """Clean records whose class is in ``classes`` (never ``never_touch``, never the singleton), and
    record it: ``vanished`` for daemons that died without a word, ``reaped``, ``lease_removed``."""
    recorder = Recorder(store.root, clock, by)
    recorder.vanished(survey)
    reasons = {(r.pid, r.port): _reason(r) for r in survey.records}

    def polite(target: Target) -> dict[str, object]:
        return retire_body(reasons.get((target.pid, target.port)), by)

    guarded = GuardedOps(ops or RealOps(clock, retire_body=polite), store, survey, clock, in_flight)
    family_range = survey.ctx.port_range  # inside the family's range (FleetContext checks it)
    result = SweepResult()
    chosen = [
        r
        for r in survey.orphans
        if r.cleanup_class in classes and r.cleanup_class is not CleanupClass.NEVER_TOUCH
    ]
    result.skipped = [Skipped.of(r) for r in survey.orphans + survey.ignored if r not in chosen]
    for item in _clean_wave(chosen, survey, guarded, family_range, clock):
        if isinstance(item, Swept):
            result.swept.append(item)
        elif isinstance(item, Failed):
            result.failed.append(item)
        elif isinstance(item, Skipped):
            result.skipped.append(item)
    owned = []
    for record in chosen:
        entry = survey.lease_entry(record.instance_id) if record.lease_present else None
        if record.other_root is not None:
            continue  # another root's lease file is its own root's to drop; we never change that root
        if entry is not None and entry.lease is not None and record.pid == entry.lease.pid:
            owned.append(entry.path)
    _drop_dead_leases(store, owned, clock)  # only those whose holder is provably gone
    for verdict in survey.lease_verdicts:
        if verdict.stale:
            removed = _remove_stale(store, verdict, survey, clock)
            if removed is not None:
                result.leases_removed.append(removed)
    _record(recorder, result)
    return result


def _root_evidence(root: str | None) -> str | None:
    return root if root is not None and len(root) <= MAX_ROOT_CHARS and is_printable(root) else None


def _reaped(recorder: Recorder, swept: Swept, root: str | None) -> None:
    evidence = EventEvidence(cleanup_path=swept.cleanup_path, daemon_root=_root_evidence(root))
    recorder.about(swept, EventKind.REAPED, ledger_reason(swept.reason), evidence)


def _record(recorder: Recorder, result: SweepResult) -> None:
    """This root's ledger records every reap (naming the daemon's root when it is another); a daemon
    of another root is recorded in that root's ledger too, when it is there and writable."""
    for swept in result.swept:
        _reaped(recorder, swept, swept.daemon_root)
        if swept.daemon_root is not None and ledger_writable(swept.daemon_root):
            _reaped(Recorder(DaemonRoot(Path(swept.daemon_root)), recorder.clock, recorder.by), swept, None)
    for removed in result.leases_removed:
        recorder.record(
            EventKind.LEASE_REMOVED,
            instance_id=removed.instance_id,
            pid=removed.pid,
            port=removed.port,
            package_version=None,
            reason=ledger_reason(removed.reason),
        )
