"""The dead letters of this login's queues: list them (read-only), or move them all back into their
queue and wake the running daemon.

"This login's queues" are the queue of the stored session's auth scope and the local-only queue
(the only ones the daemon reads); only databases that exist are looked at, and none is created.
Listing reads through :mod:`synclease.adapters.queue_inspect` (no migration, no file created);
requeueing opens each existing database with :class:`~synclease.adapters.queue.EventQueue`.
Reasons and previews are scrubbed of the session token before they leave.
"""

from __future__ import annotations

from pathlib import Path

from synclease.adapters import http_client
from synclease.adapters.fsio import check_private_dir
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.queue import EventQueue, queue_path
from synclease.adapters.queue_inspect import inspect_queue
from synclease.adapters.root import DaemonRoot
from synclease.core.clock import Clock
from synclease.core.constants import RETIRE_REQUEST_TIMEOUT_SECONDS
from synclease.core.delivery import scrub
from synclease.core.errors import RootError
from synclease.core.queue_state import PREVIEW_CHARS, DeadLetter, QueueFacts, QueueKind
from synclease.core.record import record, replace
from synclease.core.session import Session
from synclease.services.singleton import live_singleton

#: At most this many dead letters are listed (newest first); ``total`` says how many there are.
LIST_LIMIT = 1000


@record
class QueueRef:
    queue: QueueKind
    path: Path


@record
class Listed:
    queue: QueueKind
    letter: DeadLetter


@record
class Woken:
    pid: int
    port: int


@record
class DeadLetterReport:
    #: Newest first, at most the limit asked for.
    letters: list[Listed]
    #: Dead letters found (before a requeue) in every usable database.
    total: int
    #: Moved back into their queue.
    requeued: int
    #: Each database looked at (after a requeue: its state afterwards).
    queues: list[QueueFacts]
    #: The running daemon that was asked to look at its queue now.
    woken: Woken | None = None

    @property
    def truncated(self) -> bool:
        return len(self.letters) < self.total


def login_queues(root: DaemonRoot, session: Session | None) -> list[QueueRef]:
    """The auth scope's queue (when logged in), then the local-only queue."""
    refs = [QueueRef("local", queue_path(root, None))]
    if session is not None:
        scoped = queue_path(root, session.auth_scope)
        if scoped != refs[0].path:
            refs.insert(0, QueueRef("scope", scoped))
    return refs


def inspect_login_queues(
    root: DaemonRoot, refs: list[QueueRef], dead_letter_limit: int = 0
) -> list[tuple[QueueFacts, list[DeadLetter]]]:
    """Read-only facts (and up to ``dead_letter_limit`` dead letters) of each database of ``refs`` that
    exists; nothing at all when the queue directory does not."""
    try:
        if not check_private_dir(root.queue_dir):
            return []
    except RootError as exc:
        unsafe = [QueueFacts(r.path, r.queue, problem="unsafe_directory", detail=exc.message) for r in refs]
        return [(facts, []) for facts in unsafe]
    found = []
    for ref in refs:
        inspection = inspect_queue(ref.path, ref.queue, dead_letter_limit)
        if inspection is not None:
            found.append((inspection.facts, inspection.dead_letters))
    return found


def _clean(letter: DeadLetter, token: str | None) -> DeadLetter:
    return replace(
        letter,
        reason=scrub(letter.reason, token),
        data_head=scrub(letter.data_head, token, PREVIEW_CHARS + 1),
    )


def _newest(found: list[tuple[QueueKind, list[DeadLetter]]], token: str | None, limit: int) -> list[Listed]:
    merged = [Listed(queue, _clean(letter, token)) for queue, letters in found for letter in letters]
    merged.sort(key=lambda item: item.letter.dead_lettered_at, reverse=True)
    return merged[:limit]


def list_dead_letters(root: DaemonRoot, session: Session | None, limit: int = LIST_LIMIT) -> DeadLetterReport:
    found = inspect_login_queues(root, login_queues(root, session), limit)
    facts = [f for f, _ in found]
    total = sum(f.counts.dead_letters for f in facts if f.counts is not None)
    letters = _newest([(f.queue, dead) for f, dead in found], session.token if session else None, limit)
    return DeadLetterReport(letters, total, 0, facts)


def _wake(root: DaemonRoot, clock: Clock) -> Woken | None:
    view = live_singleton(LeaseStore(root), clock)
    if view is None:
        return None
    reply = http_client.post(view.lease.port, "/api/kick", view.lease.token, RETIRE_REQUEST_TIMEOUT_SECONDS)
    return Woken(view.lease.pid, view.lease.port) if reply.ok else None


def requeue(
    root: DaemonRoot, session: Session | None, clock: Clock, limit: int = LIST_LIMIT
) -> DeadLetterReport:
    """Move every dead letter of this login's usable queues back (rejection counts reset); wake the
    daemon if any moved. Unusable databases are left alone (their problem is in ``queues``)."""
    refs = login_queues(root, session)
    before = inspect_login_queues(root, refs)
    holding = {f.path for f, _ in before if f.counts is not None and f.counts.dead_letters}
    moved: list[tuple[QueueKind, list[DeadLetter]]] = []
    requeued = 0
    for ref in refs:
        if ref.path not in holding:
            continue  # nothing to move (or unusable): not even opened, so not migrated either
        with EventQueue(ref.path, clock) as queue:
            listed, count = queue.requeue_dead_letters(limit)
        moved.append((ref.queue, listed))
        requeued += count
    letters = _newest(moved, session.token if session else None, limit)
    after = [f for f, _ in inspect_login_queues(root, refs)]
    woken = _wake(root, clock) if requeued else None
    return DeadLetterReport(letters, requeued, requeued, after, woken)
