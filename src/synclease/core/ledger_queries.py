"""Pure questions over ledger events, for the daemon, the reaper, ``doctor``, metrics and the CLI.

Every function takes the events as a reader returned them (append order, oldest first) and, where
time matters, ``now``: nothing here reads a clock. "Newest" means last appended: appends are
serialised by the ledger lock, so file order is the true order even when wall clocks disagree.
Time windows are closed, ``now - window <= at <= now``: an event stamped in the future (a clock
stepped back) counts in no window until its time comes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from synclease.core.identity import HolderVerdict
from synclease.core.lease import LeaseRecord
from synclease.core.ledger import EventKind, LedgerEvent
from synclease.core.reasons import LedgerReason
from synclease.core.record import record

if TYPE_CHECKING:  # the survey is only an argument here; status reads the ledger without it
    from synclease.core.fleet import Survey

#: The events after which an instance has ended; ``vanished`` is recorded only for one without any.
END_KINDS: frozenset[EventKind] = frozenset({EventKind.RETIRED, EventKind.REAPED, EventKind.VANISHED})

#: Respawn backoff: this many ``start_failed`` within the window, with no ``serving`` after them.
RESPAWN_BACKOFF_FAILURES = 3
RESPAWN_BACKOFF_WINDOW = timedelta(minutes=10)
#: Doctor finding ``silent_death``: a ``vanished`` within this window.
SILENT_DEATH_WINDOW = timedelta(hours=24)
#: Doctor finding ``start_failures``: at least this many ``start_failed`` within the window.
START_FAILURES_THRESHOLD = 3
START_FAILURES_WINDOW = timedelta(hours=1)


def within(event: LedgerEvent, now: datetime, window: timedelta) -> bool:
    """``now - window <= event.at <= now``."""
    return now - window <= event.at <= now


def recent(events: Sequence[LedgerEvent], limit: int) -> list[LedgerEvent]:
    """The last ``limit`` events appended, newest first (none for ``limit <= 0``)."""
    return list(reversed(events[-limit:])) if limit > 0 else []


def for_instance(events: Iterable[LedgerEvent], prefix: str) -> list[LedgerEvent]:
    """Events whose ``instance_id`` starts with ``prefix`` (in order); events without one never match."""
    return [e for e in events if e.instance_id is not None and e.instance_id.startswith(prefix)]


def count(events: Iterable[LedgerEvent], kind: EventKind, since: datetime) -> int:
    """How many events of ``kind`` are stamped at or after ``since``."""
    return sum(1 for e in events if e.kind is kind and e.at >= since)


def has_ended(events: Iterable[LedgerEvent], instance_id: str) -> bool:
    """Whether ``instance_id`` already has a ``retired``, ``reaped`` or ``vanished`` event: the reaper
    records ``vanished`` only when this is False, so it is recorded at most once per instance."""
    return any(e.instance_id == instance_id and e.kind in END_KINDS for e in events)


def retirements_by_reason(
    events: Iterable[LedgerEvent], since: datetime | None = None
) -> dict[LedgerReason | None, int]:
    """``retired`` events counted by reason (None: no reason recorded), optionally since a time."""
    found = Counter(
        e.reason for e in events if e.kind is EventKind.RETIRED and (since is None or e.at >= since)
    )
    return dict(found)


@record
class Backoff:
    """The respawn-backoff decision. ``failures``: the ``start_failed`` events in the window since the
    last ``serving``. While ``active``, automatic respawns should wait; it holds through ``until``
    (when the oldest failure that keeps it active leaves the window), or until a ``serving``."""

    active: bool
    failures: int
    until: datetime | None = None


def respawn_backoff(newest_first: Iterable[LedgerEvent], now: datetime) -> Backoff:
    """Back off iff :data:`RESPAWN_BACKOFF_FAILURES` or more ``start_failed`` lie within
    :data:`RESPAWN_BACKOFF_WINDOW` of ``now`` and no ``serving`` was appended after them. The events
    come newest first, and are read only back to the last ``serving``."""
    failures: list[datetime] = []
    for event in newest_first:
        if event.kind is EventKind.SERVING:
            break  # a successful start clears every failure before it
        if event.kind is EventKind.START_FAILED and within(event, now, RESPAWN_BACKOFF_WINDOW):
            failures.append(event.at)
    if len(failures) < RESPAWN_BACKOFF_FAILURES:
        return Backoff(active=False, failures=len(failures))
    keeps_it = sorted(failures)[-RESPAWN_BACKOFF_FAILURES]
    return Backoff(active=True, failures=len(failures), until=keeps_it + RESPAWN_BACKOFF_WINDOW)


@record
class DoctorSignals:
    """The ledger's inputs to ``auth doctor``: recent ``vanished`` and ``start_failed`` events,
    newest first; the two properties say whether each finding applies."""

    vanished: tuple[LedgerEvent, ...]
    start_failed: tuple[LedgerEvent, ...]

    @property
    def silent_death(self) -> bool:
        return bool(self.vanished)

    @property
    def start_failures(self) -> bool:
        return len(self.start_failed) >= START_FAILURES_THRESHOLD


def doctor_signals(events: Sequence[LedgerEvent], now: datetime) -> DoctorSignals:
    """``silent_death``: a ``vanished`` within :data:`SILENT_DEATH_WINDOW`; ``start_failures``:
    :data:`START_FAILURES_THRESHOLD` or more ``start_failed`` within :data:`START_FAILURES_WINDOW`."""
    newest_first = recent(events, len(events))
    return DoctorSignals(
        vanished=tuple(
            e for e in newest_first if e.kind is EventKind.VANISHED and within(e, now, SILENT_DEATH_WINDOW)
        ),
        start_failed=tuple(
            e
            for e in newest_first
            if e.kind is EventKind.START_FAILED and within(e, now, START_FAILURES_WINDOW)
        ),
    )


def vanished(found: Survey, events: Iterable[LedgerEvent]) -> list[tuple[LeaseRecord, LedgerReason]]:
    """The daemons of a survey that died without a word: their lease is stale (holder lock free and PID
    gone or reused) and ``events`` hold no ending for them; with the reason the proof gives."""
    known = tuple(events)
    out: list[tuple[LeaseRecord, LedgerReason]] = []
    for verdict in found.lease_verdicts:
        entry = found.lease_entry(verdict.instance_id)
        if not verdict.stale or entry is None or entry.lease is None or has_ended(known, verdict.instance_id):
            continue
        reused = verdict.holder is HolderVerdict.PID_REUSED
        out.append((entry.lease, LedgerReason.PID_REUSED if reused else LedgerReason.HOLDER_DEAD))
    return out
