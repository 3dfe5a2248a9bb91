"""Retiring a sync daemon: the one "take the lock, clear the record, ask it politely" sequence.

``sync stop``, ``auth logout``, ``ensure`` (the superseded singleton) and ``sync run --replace`` all
retire a daemon the same way: the singleton record stops naming it under the singleton lock (so no
CLI reuses it from then on), then it is asked over its token to retire (one bounded request). The
daemon also leaves by itself: its governor sees the record no longer names it.
``sync stop`` then escalates on proof (:func:`stop_singleton`).
"""

from __future__ import annotations

from collections.abc import Callable

from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.signals import RealOps, post_retire
from synclease.core.actor import Actor
from synclease.core.clock import Clock
from synclease.core.escalate import CleanupPath, Ops, Outcome, Target, escalate
from synclease.core.lease import LeaseRecord
from synclease.core.ledger import EventEvidence, EventKind
from synclease.core.reasons import LedgerReason
from synclease.core.record import record
from synclease.services.history import Recorder
from synclease.services.singleton import SingletonView, live_singleton

#: ``sync stop`` gives each step of the ladder this long (a daemon finishing a batch needs a moment).
STOP_STEP_SECONDS = 3.0


def retire_body(reason: str | None, by: Actor | None) -> dict[str, object]:
    """What a retire request says of itself: why, and who asks (for the daemon's ``retired`` event)."""
    body: dict[str, object] = {}
    if reason is not None:
        body["reason"] = reason
    if by is not None:
        body["by"] = {"pid": by.pid, "command": by.command}
    return body


def request_retire(lease: LeaseRecord, reason: str | None = None, by: Actor | None = None) -> bool:
    """Ask the daemon holding ``lease`` to retire (``POST /api/retire`` with its token); True if accepted."""
    return post_retire(lease.port, lease.token, retire_body(reason, by))


def unrecord(
    store: LeaseStore, clock: Clock, wanted: Callable[[SingletonView], bool] = lambda view: True
) -> SingletonView | None:
    """Under the singleton lock: the live singleton, its record cleared, if there is one and it is
    ``wanted``; else None (and nothing changed)."""
    with store.singleton_lock():
        view = live_singleton(store, clock)
        if view is None or not wanted(view):
            return None
        store.clear_singleton_if(view.lease.instance_id)
    return view


def release_record(store: LeaseStore, instance_id: str, timeout: float) -> bool:
    """A retiring daemon's own step: clear the record if it still names ``instance_id``. The lock is
    taken only when it does (a CLI holding the lock has already changed the record)."""
    record = store.read_singleton().record
    if record is None or record.instance_id != instance_id:
        return False
    with store.singleton_lock(timeout=timeout):
        return store.clear_singleton_if(instance_id)


@record
class Retired:
    view: SingletonView
    accepted: bool


def retire_singleton(
    store: LeaseStore,
    clock: Clock,
    wanted: Callable[[SingletonView], bool] = lambda view: True,
    by: Actor | None = None,
) -> Retired | None:
    """Unrecord the live singleton (if ``wanted``) and ask it to retire; None if there was none."""
    view = unrecord(store, clock, wanted)
    return None if view is None else Retired(view, request_retire(view.lease, "operator_stop", by))


@record
class Stopped:
    lease: LeaseRecord
    outcome: Outcome


def stop_singleton(
    store: LeaseStore, clock: Clock, port_range: range, ops: Ops | None = None, by: Actor | None = None
) -> Stopped | None:
    """``sync stop``: unrecord the singleton, then retire → SIGTERM → SIGKILL, each signal on proof.

    The polite step tells the daemon it is an ``operator_stop`` (it records its own ``retired``); a
    daemon that had to be signalled is recorded here as ``reaped`` with the step that ended it."""
    view = unrecord(store, clock)
    if view is None:
        return None
    lease = view.lease
    target = Target(lease.pid, lease.port, lease.start, lease.instance_id, lease.token)
    real = ops or RealOps(clock, retire_body=retire_body("operator_stop", by))
    outcome = escalate(target, port_range, real, step_timeout=STOP_STEP_SECONDS)
    if outcome.ok and outcome.path in (CleanupPath.TERMINATE, CleanupPath.KILL):
        evidence = EventEvidence(cleanup_path=outcome.path)
        Recorder(store.root, clock, by).about(lease, EventKind.REAPED, LedgerReason.OPERATOR_STOP, evidence)
    return Stopped(lease, outcome)
