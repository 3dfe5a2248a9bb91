"""``synclease explain TARGET``: find the listener or lease the target names, and gather the facts
for :mod:`synclease.core.explain`. Reads only (the survey never signals, nothing is written)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.ledger_store import LedgerStore
from synclease.adapters.root import DaemonRoot
from synclease.adapters.session_store import current_session
from synclease.core.clock import Clock
from synclease.core.explain import ExplainTarget, Explanation, Reuse, explain_lease, explain_listener
from synclease.core.fleet import IdentityRecord, StaleLease, Survey
from synclease.core.ledger import LedgerEvent
from synclease.core.ledger_queries import for_instance, recent
from synclease.services.reuse import reusable
from synclease.services.singleton import live_singleton
from synclease.services.survey import survey

HISTORY_LIMIT = 10
T = TypeVar("T")


def _pick(
    items: Iterable[T],
    target: ExplainTarget,
    port: Callable[[T], int | None],
    pid: Callable[[T], int | None],
    instance: Callable[[T], str | None],
) -> T | None:
    """The first item on the target's port, else with its PID, else whose instance id it prefixes."""
    items = list(items)
    if target.port is not None and (hit := next((i for i in items if port(i) == target.port), None)):
        return hit
    if target.pid is not None and (hit := next((i for i in items if pid(i) == target.pid), None)):
        return hit
    prefix = target.prefix
    if prefix is None:
        return None
    return next((i for i in items if (iid := instance(i)) is not None and iid.startswith(prefix)), None)


def find_record(records: Iterable[IdentityRecord], target: ExplainTarget) -> IdentityRecord | None:
    return _pick(records, target, lambda r: r.port, lambda r: r.pid, lambda r: r.instance_id)


def find_lease(verdicts: Iterable[StaleLease], target: ExplainTarget) -> StaleLease | None:
    return _pick(verdicts, target, lambda v: v.port, lambda v: v.pid, lambda v: v.instance_id)


def _reuse(store: LeaseStore, clock: Clock, record: IdentityRecord, version: str) -> Reuse:
    if not record.our_singleton:
        return Reuse(False, "it is not the recorded singleton: `sync start` reuses or spawns that one")
    view = live_singleton(store, clock)
    if view is None:
        return Reuse(False, "its lease is not live or its self-report does not agree with it")
    session = current_session(store.root)
    if reusable(view, version, session.session_id if session else None):
        return Reuse(True, "live lease, agreeing self-report, not older than this install, current login")
    if session is not None and view.health.session_id != session.session_id:
        return Reuse(False, "it holds another login than the current one")
    return Reuse(False, "it is older than this install or speaks another protocol: newer wins")


def _history(events: tuple[LedgerEvent, ...], instance_id: str | None) -> tuple[LedgerEvent, ...]:
    if instance_id is None:
        return ()
    return tuple(recent(for_instance(events, instance_id), HISTORY_LIMIT))


def explain(
    root: DaemonRoot, clock: Clock, port_range: range, version: str, target: ExplainTarget
) -> Explanation:
    store = LeaseStore(root)
    found: Survey = survey(store, clock, port_range)
    events = LedgerStore(root).read().events
    record = find_record(found.records, target)
    if record is not None:
        reuse = _reuse(store, clock, record, version)
        return explain_listener(
            target, record, found.ctx.scope_id, reuse, _history(events, record.instance_id)
        )
    lease = find_lease(found.lease_verdicts, target)
    if lease is not None:
        return explain_lease(target, lease, _history(events, lease.instance_id))
    if target.prefix is not None:
        history = tuple(recent(for_instance(events, target.prefix), HISTORY_LIMIT))
        return Explanation(target, False, history=history, next_command="synclease sync history")
    return Explanation(target, False, next_command="synclease auth doctor")
