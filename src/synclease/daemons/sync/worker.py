"""The sync worker: a background thread that drains the queue to the session's server.

Loop: claim a batch (bounded by count and bytes) → settle it (:mod:`.settle`: upload, ``complete`` on
2xx, split a permanently refused batch until the poison event is found, count or dead-letter that one)
→ otherwise ``release`` and back off (``consecutive_failures`` counts; a 401/403 sets ``auth_problem``
and waits the full backoff cap, so a revoked token is never hammered). With no session nothing is
claimed: events wait in the queue. An uploader that raises (a bug) stops claiming until a restart.

Seams for the daemon's governor:

* :meth:`SyncWorker.in_flight` — True from the moment a claim starts until its batch is settled
  (completed or released). The governor never retires while it is True.
* :meth:`SyncWorker.stop_claiming` — superseded: the current batch is finished (or released on
  failure), no further batch is claimed. Once it returns, ``in_flight()`` covers any claim in progress.
* :meth:`SyncWorker.stop` — ``stop_claiming`` + join; if the thread is still busy after ``timeout``, the
  batch it holds is released from the caller's thread, so the next singleton can take it at once
  (a late ``complete`` of that batch is then a harmless no-op: rows are deleted only while still ours).
* :meth:`SyncWorker.last_activity_monotonic` — the idle clock: claims, uploads and kicks count; empty
  polls and status reads do not.
* :meth:`SyncWorker.on_settled` — called (from the worker's thread) each time a claim ends and
  ``in_flight()`` turns False, so a draining daemon wakes when its batch settles instead of polling.

Nothing is ever lost: an event is deleted only after a 2xx or when it moves to the dead-letter table;
if this process dies mid-upload, the claim lapses after ``claim_seconds`` and any instance re-claims it
(at-least-once; receivers dedupe by id).
All waits go through the clock (``clock.wait(wake_event, seconds)``, and ``stop`` waits for the thread
to finish with ``clock.wait(finished_event, timeout)``), so tests never really wait. Without a session
the worker has nothing to do and sleeps until stopped (:data:`NO_SESSION_WAIT_SECONDS` bounds the
clock's wait); with one, it looks at the queue when kicked and at least every
:data:`DEFAULT_IDLE_POLL_SECONDS` (a safety net for a kick that was missed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.queue import EventQueue
from synclease.adapters.upload import upload_batch
from synclease.core.backoff import DEFAULT_BASE_SECONDS, DEFAULT_CAP_SECONDS, next_delay
from synclease.core.clock import Clock, to_wire
from synclease.core.delivery import MAX_BATCH_BYTES
from synclease.core.errors import SyncleaseError
from synclease.core.events import Event
from synclease.core.queue_state import QueueCounts
from synclease.core.record import as_json, record
from synclease.core.session import Session
from synclease.daemons.sync.settle import Settler, Uploader

__all__ = ["SyncWorker", "Uploader", "WorkerStatus"]

log = logging.getLogger("synclease.work")


@record
class WorkerStatus:
    """What the worker reports in ``/api/health`` (``sync``): no token, no event data."""

    running: bool
    queue_depth: int
    last_sync: str | None
    consecutive_failures: int
    auth_problem: bool
    dead_letters: int = 0

    def to_json(self) -> dict[str, Any]:
        return as_json(self)


DEFAULT_BATCH_SIZE = 100
DEFAULT_CLAIM_SECONDS = 30.0
#: Per socket operation; well under the claim, so a normal slow upload settles before its claim lapses.
DEFAULT_UPLOAD_TIMEOUT_SECONDS = 10.0
#: How often an idle worker looks at the queue by itself: ``sync push`` from another process enqueues
#: straight into SQLite and then kicks the daemon (``POST /api/kick``), which makes it look at once;
#: this poll only catches a kick that was missed (and claims that lapsed), so it is rare: an idle
#: daemon must stay under one wake-up a second in all.
DEFAULT_IDLE_POLL_SECONDS = 10.0
#: With no session nothing can be uploaded: the worker sleeps until it is stopped (a login restarts
#: the daemon); the clock's wait is bounded, so it looks again after this long.
NO_SESSION_WAIT_SECONDS = 3600.0


class SyncWorker:
    def __init__(
        self,
        queue: EventQueue,
        session: Session | None,
        instance_id: str,
        clock: Clock = SYSTEM_CLOCK,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_max_bytes: int = MAX_BATCH_BYTES,
        claim_seconds: float = DEFAULT_CLAIM_SECONDS,
        upload_timeout: float = DEFAULT_UPLOAD_TIMEOUT_SECONDS,
        idle_poll_seconds: float = DEFAULT_IDLE_POLL_SECONDS,
        backoff_base: float = DEFAULT_BASE_SECONDS,
        backoff_cap: float = DEFAULT_CAP_SECONDS,
        uploader: Uploader = upload_batch,
        rand: Callable[[], float] | None = None,
    ) -> None:
        if batch_size < 1 or batch_max_bytes < 1 or not claim_seconds > 0:
            raise ValueError("batch_size, batch_max_bytes and claim_seconds must be > 0")
        if not upload_timeout > 0 or not idle_poll_seconds > 0:
            raise ValueError("upload_timeout and idle_poll_seconds must be > 0")
        self._queue = queue
        self._session = session
        self._instance_id = instance_id
        self._clock = clock
        self._batch_size = batch_size
        self._batch_max_bytes = batch_max_bytes
        self._claim_seconds = claim_seconds
        self._upload_timeout = upload_timeout
        self._idle_poll = idle_poll_seconds
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._uploader = uploader
        self._rand = rand

        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._no_more_claims = threading.Event()
        self._thread: threading.Thread | None = None
        self._finished = threading.Event()
        self._settled: Callable[[], None] | None = None
        self._in_flight = False
        self._batch: list[str] = []
        self._failures = 0
        self._auth_problem = False
        self._last_sync: str | None = None
        self._last_reason: str | None = None
        self._last_counts = QueueCounts(0, 0)
        self._last_activity = clock.monotonic()

    # --- governor seams -------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("SyncWorker.start() called twice")
            self._thread = threading.Thread(
                target=self._run, name=f"sync-worker-{self._instance_id[:8]}", daemon=True
            )
            self._thread.start()

    def in_flight(self) -> bool:
        with self._lock:
            return self._in_flight

    def stop_claiming(self) -> None:
        with self._lock:
            self._no_more_claims.set()
        self._wake.set()

    def on_settled(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the worker's thread) whenever a claim ends (``in_flight()`` False)."""
        self._settled = callback

    def stop(self, timeout: float) -> None:
        self.stop_claiming()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            self._clock.wait(self._finished, timeout)
        with self._lock:
            leftover = list(self._batch)
            self._batch = []
        if leftover:
            try:
                released = self._queue.release(self._instance_id, leftover)
            except SyncleaseError as exc:
                log.warning(
                    "could not release %d claimed events (%s); their claim will lapse",
                    len(leftover),
                    exc.one_line(),
                )
            else:
                log.info("released %d claimed events of an unfinished upload", released)

    def kick(self) -> None:
        with self._lock:
            self._last_activity = self._clock.monotonic()
        self._wake.set()

    def status(self) -> WorkerStatus:
        try:
            counts = self._queue.counts()
        except SyncleaseError:
            counts = self._last_counts
        with self._lock:
            self._last_counts = counts
            thread = self._thread
            return WorkerStatus(
                running=thread is not None and thread.is_alive() and not self._no_more_claims.is_set(),
                queue_depth=counts.depth,
                last_sync=self._last_sync,
                consecutive_failures=self._failures,
                auth_problem=self._auth_problem,
                dead_letters=counts.dead_letters,
            )

    def last_activity_monotonic(self) -> float:
        with self._lock:
            return self._last_activity

    def last_failure_reason(self) -> str | None:
        """Why the last attempt failed (``None`` after a success); never contains the token."""
        with self._lock:
            return self._last_reason

    def is_alive(self) -> bool:
        """The thread is running (it may be finishing a batch after ``stop_claiming``)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    # --- the loop -------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._no_more_claims.is_set():
                try:
                    delay = self._step()
                except Exception:  # a bug must not kill the thread silently and strand the queue
                    log.exception("sync worker step failed")
                    delay = self._record_failure("internal error", auth_failed=False, retry_after=None)
                if delay > 0 and not self._no_more_claims.is_set():
                    self._clock.wait(self._wake, delay)
                self._wake.clear()
        finally:
            self._finished.set()

    def _step(self) -> float:
        """One claim/upload/settle round; returns how long to wait before the next one."""
        session = self._session
        if session is None:
            return NO_SESSION_WAIT_SECONDS  # local-only: events wait for a session
        with self._lock:
            if self._no_more_claims.is_set():
                return 0.0
            self._in_flight = True
        try:
            try:
                batch = self._queue.claim_batch(
                    self._instance_id, self._batch_size, self._claim_seconds, self._batch_max_bytes
                )
            except SyncleaseError as exc:
                return self._record_failure(f"queue: {exc.one_line()}", auth_failed=False, retry_after=None)
            if not batch:
                return self._idle_poll
            with self._lock:
                self._batch = [event.id for event in batch]
                self._last_activity = self._clock.monotonic()
            try:
                return self._settle(session, batch)
            finally:
                with self._lock:
                    self._last_activity = self._clock.monotonic()
        finally:
            with self._lock:
                self._in_flight = False
                self._batch = []
            if self._settled is not None:
                self._settled()

    def _holding(self, ids: list[str]) -> None:
        with self._lock:
            self._batch = ids

    def _settle(self, session: Session, batch: list[Event]) -> float:
        settler = Settler(
            self._queue,
            session,
            self._instance_id,
            self._uploader,
            self._upload_timeout,
            self._claim_seconds,
            self._no_more_claims,
            self._holding,
        )
        result = settler.settle(batch)
        if result.delivered:
            with self._lock:
                self._failures = 0
                self._auth_problem = False
                self._last_reason = None
                self._last_sync = to_wire(self._clock.now())
        failure = result.failure
        if failure is None:
            return 0.0
        if failure.halt:
            self.stop_claiming()  # a bug: no further batch until a restart (settle logged it)
        return self._record_failure(failure.reason, failure.auth_failed, failure.retry_after)

    def _record_failure(self, reason: str, auth_failed: bool, retry_after: float | None) -> float:
        with self._lock:
            self._failures += 1
            failures = self._failures
            if auth_failed:
                self._auth_problem = True
            self._last_reason = reason
        if auth_failed:
            delay = self._backoff_cap
        else:
            delay = next_delay(failures, self._backoff_base, self._backoff_cap, self._rand)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self._backoff_cap))
        log.warning("sync upload failed (%s); %d in a row, next try in %.2fs", reason, failures, delay)
        return delay
