"""Build the daemon's work from the root: the session (if any), its queue, and the upload worker."""

from __future__ import annotations

import logging

from synclease.adapters.queue import EventQueue, open_queue
from synclease.adapters.root import DaemonRoot
from synclease.adapters.session_store import current_session
from synclease.core.clock import Clock
from synclease.core.errors import SyncleaseError
from synclease.core.record import record
from synclease.daemons.sync.worker import SyncWorker

log = logging.getLogger("synclease.daemon")


@record
class WorkSetup:
    worker: SyncWorker
    auth_scope: str | None
    server_url: str | None
    queue_db_path: str
    session_id: str | None


def _adopt_local(root: DaemonRoot, queue: EventQueue, clock: Clock) -> None:
    """Move the events pushed before login into the login's queue. A failure does not stop the daemon
    (the login's own events still flow): it is logged, the events stay where they are, and
    ``auth doctor`` shows them (``queue_not_adopted``, or ``queue_unusable`` for the database)."""
    try:
        with open_queue(root, None, clock) as local:
            moved = queue.adopt_from(local)
    except SyncleaseError as exc:
        log.warning(
            "could not adopt the events queued before login (%s); they stay in the local queue "
            "(`synclease auth doctor` shows them)",
            exc.one_line(),
        )
        return
    if moved:
        log.info("adopted %d event(s) queued before login", moved)


def build_work(root: DaemonRoot, instance_id: str, clock: Clock, claim_seconds: float = 30.0) -> WorkSetup:
    """Open the queue of the session's auth scope; events pushed before login are adopted into it."""
    session = current_session(root)
    scope = session.auth_scope if session else None
    queue = open_queue(root, scope, clock)
    if session is not None:
        _adopt_local(root, queue, clock)
    worker = SyncWorker(queue, session, instance_id, clock, claim_seconds=claim_seconds)
    return WorkSetup(
        worker,
        scope,
        session.server_url if session else None,
        str(queue.path),
        session.session_id if session else None,
    )
