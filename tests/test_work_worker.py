"""The sync worker against the loopback receiver: drains, backs off, reports auth problems, never loses.

Synchronisation is by conditions polled with deadlines (``wait_for``); waits inside the worker go
through an injected ``sleep`` that records the requested delay and waits at most a few milliseconds,
so backoff is observed without being waited out. Nothing asserts on wall time.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from synclease.adapters.queue import EventQueue, open_queue
from synclease.adapters.root import DaemonRoot
from synclease.adapters.upload import UploadOutcome
from synclease.core.backoff import next_delay
from synclease.core.clock import Clock, from_wire
from synclease.core.session import Session, new_session
from synclease.daemons.sync.worker import SyncWorker
from tests.clocks import FakeClock, RecordingClock
from tests.conftest import wait_for
from tests.receiver import Receiver

TOKEN = "tok-SECRET-worker-0b5e"
STATUS_KEYS = {"running", "queue_depth", "last_sync", "consecutive_failures", "auth_problem", "dead_letters"}


def drained(worker: SyncWorker, queue: EventQueue, timeout: float = 30.0) -> None:
    """Wait until the queue is empty *and* the worker has settled its last batch (status updated)."""
    wait_for(lambda: queue.depth() == 0, timeout, what="queue drained")
    wait_for(lambda: not worker.in_flight(), timeout, what="the last batch to settle")


def claimed(path: Path) -> dict[str | None, int]:
    with sqlite3.connect(str(path), timeout=30) as conn:
        rows = conn.execute("SELECT claimed_by, COUNT(*) FROM events GROUP BY claimed_by").fetchall()
    return {who: n for who, n in rows}


def session_for(rx: Receiver) -> Session:
    return new_session(rx.url, TOKEN, "alice", "core", datetime(2030, 1, 1, tzinfo=UTC))


@pytest.fixture
def root(tmp_path: Path) -> DaemonRoot:
    return DaemonRoot(tmp_path / "root").prepare()


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def queue(root: DaemonRoot) -> Iterator[EventQueue]:
    q = open_queue(root, "https://x|alice|core")
    yield q
    q.close()


class Workers:
    """Builds fast workers (tiny backoff, short idle poll) and stops every one at teardown."""

    def __init__(self) -> None:
        self.made: list[SyncWorker] = []

    def __call__(
        self,
        queue: EventQueue,
        session: Session | None,
        instance_id: str = "inst-a",
        clock: Clock | None = None,
        **overrides: Any,
    ) -> SyncWorker:
        options: dict[str, Any] = {
            "batch_size": 100,
            "claim_seconds": 30.0,
            "upload_timeout": 10.0,
            "idle_poll_seconds": 0.05,
            "backoff_base": 0.001,
            "backoff_cap": 0.05,
        }
        options.update(overrides)
        worker = SyncWorker(queue, session, instance_id, clock or RecordingClock(), **options)
        self.made.append(worker)
        return worker


@pytest.fixture
def workers() -> Iterator[Workers]:
    made = Workers()
    yield made
    for worker in made.made:
        worker.stop(5)


# --- backoff (pure) -------------------------------------------------------------------------------


def test_next_delay_is_exponential_and_capped() -> None:
    assert next_delay(0) == 0.0
    assert next_delay(-3) == 0.0
    assert [next_delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert next_delay(10_000) == 30.0
    assert next_delay(3, base=0.001, cap=0.05) == 0.004
    with pytest.raises(ValueError):
        next_delay(1, base=-1)


def test_next_delay_jitter_stays_within_half_to_full() -> None:
    assert next_delay(4, rand=lambda: 0.0) == 2.0
    assert next_delay(4, rand=lambda: 0.5) == 3.0
    assert next_delay(4, rand=lambda: 0.999) < 4.0
    assert next_delay(4, rand=lambda: 7.0) == 4.0  # a bad source is clamped


# --- the worker -----------------------------------------------------------------------------------


def test_status_shape_and_lifecycle(queue: EventQueue, rx: Receiver, workers: Workers) -> None:
    worker = workers(queue, session_for(rx))
    status = worker.status()
    assert set(status.to_json()) == STATUS_KEYS
    assert status.to_json() == {
        "running": False,
        "queue_depth": 0,
        "last_sync": None,
        "consecutive_failures": 0,
        "auth_problem": False,
        "dead_letters": 0,
    }
    worker.start()
    assert worker.status().running is True
    with pytest.raises(RuntimeError):
        worker.start()
    worker.stop(5)
    assert worker.status().running is False
    assert not worker.is_alive()
    assert worker.in_flight() is False


def test_drains_1000_events_every_id_arrives(queue: EventQueue, rx: Receiver, workers: Workers) -> None:
    ids = queue.enqueue_many([("bulk", {"n": n}) for n in range(1000)])
    worker = workers(queue, session_for(rx))
    worker.start()
    drained(worker, queue)
    assert set(ids) <= rx.accepted_ids
    assert rx.accepted_total == 1000  # no crash, no failure: no duplicates either
    assert all(r.authorization == f"Bearer {TOKEN}" for r in rx.requests)
    assert max(len(r.event_ids) for r in rx.requests) == 100
    status = worker.status()
    assert status.consecutive_failures == 0
    assert status.auth_problem is False
    assert status.queue_depth == 0
    assert from_wire(status.last_sync).tzinfo is not None
    assert status.last_sync.endswith("Z")


def test_no_session_is_local_only(queue: EventQueue, workers: Workers) -> None:
    ids = queue.enqueue_many([("t", n) for n in range(5)])
    sleeps = RecordingClock()
    worker = workers(queue, None, clock=sleeps)
    worker.start()
    worker.kick()
    wait_for(lambda: len(sleeps.snapshot()) >= 5, what="several idle rounds")
    assert worker.in_flight() is False
    assert claimed(queue.path) == {None: 5}
    assert worker.status().queue_depth == 5
    assert worker.status().running is True
    assert [e.id for e in queue.claim_batch("check", 10, 30)] == ids


def test_receiver_down_backs_off_keeps_events_then_drains(
    queue: EventQueue, rx: Receiver, workers: Workers
) -> None:
    ids = queue.enqueue_many([("t", n) for n in range(250)])
    rx.stop()
    sleeps = RecordingClock()
    worker = workers(queue, session_for(rx), clock=sleeps, backoff_base=0.001, backoff_cap=0.016)
    worker.start()
    wait_for(lambda: len(sleeps.snapshot()) >= 7, what="failures to pile up")
    assert worker.status().consecutive_failures >= 7
    delays = sleeps.snapshot()[:7]
    assert delays == [0.001, 0.002, 0.004, 0.008, 0.016, 0.016, 0.016]  # grows, then capped
    status = worker.status()
    assert status.queue_depth == 250
    assert status.auth_problem is False
    assert status.last_sync is None
    assert "connection refused" in (worker.last_failure_reason() or "")
    wait_for(lambda: not worker.in_flight(), what="a failed batch to be released")
    assert set(claimed(queue.path)) <= {None, "inst-a"}  # released or about to be re-tried

    rx.start()  # back on the same port
    drained(worker, queue)
    assert set(ids) <= rx.accepted_ids
    status = worker.status()
    assert status.consecutive_failures == 0
    assert status.last_sync is not None
    assert worker.last_failure_reason() is None


def test_401_is_an_auth_problem_backed_off_at_the_cap(
    queue: EventQueue, rx: Receiver, workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ids = queue.enqueue_many([("t", n) for n in range(30)])
    rx.answer(401)
    sleeps = RecordingClock()
    worker = workers(queue, session_for(rx), clock=sleeps, backoff_base=0.001, backoff_cap=0.04)
    worker.start()
    wait_for(lambda: len(sleeps.snapshot()) >= 3, what="401s")
    assert worker.status().consecutive_failures >= 3
    status = worker.status()
    assert status.auth_problem is True
    assert status.queue_depth == 30
    assert sleeps.snapshot()[:3] == [0.04, 0.04, 0.04]  # not hot: the cap, from the first failure
    assert rx.accepted_ids == set()
    assert "HTTP 401" in (worker.last_failure_reason() or "")

    rx.answer(None)  # the token works again (e.g. the server fixed it)
    drained(worker, queue)
    assert set(ids) <= rx.accepted_ids
    assert worker.status().auth_problem is False
    assert TOKEN not in caplog.text
    assert "401" in caplog.text


def test_stop_claiming_during_slow_upload_finishes_the_batch(
    queue: EventQueue, rx: Receiver, workers: Workers
) -> None:
    ids = queue.enqueue_many([("t", n) for n in range(250)])
    rx.hold()
    worker = workers(queue, session_for(rx))
    worker.start()
    assert rx.wait_for(lambda: rx.arrived >= 1)
    assert worker.in_flight() is True
    worker.stop_claiming()
    assert worker.in_flight() is True  # still finishing the batch it holds
    assert worker.status().running is False
    rx.release()
    wait_for(lambda: not worker.in_flight(), what="the batch to settle")
    wait_for(lambda: not worker.is_alive(), what="the worker thread to end")
    # The first batch was delivered and deleted; nothing more was claimed; nothing is left claimed.
    assert rx.accepted_ids == set(ids[:100])
    assert queue.depth() == 150
    assert claimed(queue.path) == {None: 150}
    # The successor drains the rest.
    successor = workers(queue, session_for(rx), instance_id="inst-b")
    successor.start()
    wait_for(lambda: queue.depth() == 0, what="the successor to drain")
    assert set(ids) <= rx.accepted_ids


def test_stop_with_a_stuck_upload_releases_the_batch(
    queue: EventQueue, rx: Receiver, workers: Workers
) -> None:
    ids = queue.enqueue_many([("t", n) for n in range(150)])
    rx.hold()
    worker = workers(queue, session_for(rx))
    worker.start()
    assert rx.wait_for(lambda: rx.arrived >= 1)
    worker.stop(timeout=0.05)  # the upload is still held: the join gives up
    assert worker.is_alive()
    assert claimed(queue.path) == {None: 150}  # released for the next singleton, none lost
    assert queue.depth() == 150
    successor = workers(queue, session_for(rx), instance_id="inst-b")
    successor.start()
    rx.release()
    wait_for(lambda: queue.depth() == 0, what="the successor to drain")
    wait_for(lambda: not worker.is_alive(), what="the old worker to end")
    assert set(ids) <= rx.accepted_ids  # duplicates allowed (at-least-once), loss is not


def test_lapsed_claim_of_a_crashed_instance_is_resent(
    root: DaemonRoot, rx: Receiver, workers: Workers
) -> None:
    clock = FakeClock()
    queue = open_queue(root, "https://x|alice|core", clock)
    ids = queue.enqueue_many([("t", n) for n in range(40)])
    dead = queue.claim_batch("crashed-instance", 15, 30.0)  # claimed, then the holder died
    sleeps = RecordingClock(clock)  # fake time, waits recorded (and really short)
    worker = workers(queue, session_for(rx), instance_id="inst-b", clock=sleeps, idle_poll_seconds=1000.0)
    worker.start()
    wait_for(lambda: queue.depth() == 15, what="the unclaimed events to be sent")
    wait_for(lambda: 1000.0 in sleeps.snapshot(), what="the worker to go idle")
    assert rx.accepted_ids == set(ids[15:])
    clock.advance(30.1)  # the dead claim lapses
    worker.kick()
    wait_for(lambda: queue.depth() == 0, what="the lapsed batch to be re-sent")
    assert rx.accepted_ids == set(ids)
    assert {e.id for e in dead} == set(ids[:15])
    worker.stop(5)
    queue.close()


_CRASHING_CHILD = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from synclease.adapters.queue import EventQueue
from synclease.core.session import new_session
from synclease.daemons.sync.worker import SyncWorker
q = EventQueue(Path(sys.argv[1]))
s = new_session(sys.argv[2], "child-token", None, None, datetime.now(UTC))
SyncWorker(q, s, "child-instance", claim_seconds=float(sys.argv[3])).start()
print("started", flush=True)
time.sleep(600)
"""


def test_sigkill_mid_upload_then_another_instance_delivers_everything(
    root: DaemonRoot, rx: Receiver, workers: Workers
) -> None:
    queue = open_queue(root, "https://x|alice|core")
    ids = queue.enqueue_many([("t", n) for n in range(120)])
    rx.hold()
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_CHILD, str(queue.path), rx.url, "1.0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert rx.wait_for(lambda: rx.arrived >= 1, timeout=30), "the child never uploaded"
        assert claimed(queue.path) == {"child-instance": 100, None: 20}
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=30)
    rx.release()
    worker = workers(queue, session_for(rx), instance_id="inst-b", claim_seconds=1.0)
    worker.start()
    # The 20 unclaimed go at once; the dead child's 100 once its real-clock claim lapses.
    wait_for(lambda: queue.depth() == 0, timeout=60, what="everything delivered after the crash")
    assert set(ids) <= rx.accepted_ids
    queue.close()


def test_kick_wakes_an_idle_worker(queue: EventQueue, rx: Receiver, workers: Workers) -> None:
    sleeps = RecordingClock(ceiling=1000.0)  # really waits: only a kick can wake it in time
    worker = workers(queue, session_for(rx), clock=sleeps, idle_poll_seconds=1000.0)
    worker.start()
    wait_for(lambda: sleeps.snapshot() == [1000.0], what="the worker to go idle")
    ids = queue.enqueue_many([("pushed", n) for n in range(3)])
    worker.kick()
    wait_for(lambda: set(ids) <= rx.accepted_ids, what="the kicked upload")
    worker.stop(5)
    assert not worker.is_alive()  # stop also wakes a long idle wait


def test_last_activity_counts_work_not_idle_polls(queue: EventQueue, rx: Receiver, workers: Workers) -> None:
    clock = FakeClock()
    sleeps = RecordingClock(clock)
    worker = workers(queue, session_for(rx), clock=sleeps)
    assert worker.last_activity_monotonic() == 1000.0
    worker.start()
    clock.advance(5)
    seen = len(sleeps.snapshot())
    wait_for(lambda: len(sleeps.snapshot()) >= seen + 3, what="idle polls")
    assert worker.last_activity_monotonic() == 1000.0  # empty polls are not activity
    clock.advance(5)
    worker.kick()
    assert worker.last_activity_monotonic() == 1010.0
    clock.advance(5)
    queue.enqueue("t", 1)
    wait_for(lambda: queue.depth() == 0, what="the upload")
    assert worker.last_activity_monotonic() == 1015.0


def test_an_uploader_that_raises_is_logged_once_and_stops_claiming_until_restart(
    queue: EventQueue, workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    """A raise is a bug, not a retryable outcome: one traceback in the log (token scrubbed), the
    batch given back at once, and no further claim (it used to retry the bug forever, silently)."""
    queue.enqueue_many([("t", n) for n in range(10)])
    calls: list[int] = []

    def broken(server: str, token: str, events: Any, timeout: float) -> UploadOutcome:
        calls.append(len(events))
        raise RuntimeError(f"boom {token}")

    worker = workers(
        queue, new_session("http://127.0.0.1:1", TOKEN, None, None, datetime.now(UTC)), uploader=broken
    )
    with caplog.at_level(logging.ERROR, logger="synclease.work"):
        worker.start()
        wait_for(lambda: not worker.is_alive(), what="the worker to stop claiming")
    assert calls == [10]
    assert worker.status().running is False and worker.status().consecutive_failures == 1
    assert claimed(queue.path) == {None: 10}  # kept, and free for any other daemon at once
    assert "uploader raised RuntimeError" in (worker.last_failure_reason() or "")
    bugs = [r for r in caplog.records if "the uploader raised" in r.getMessage()]
    assert len(bugs) == 1
    text = bugs[0].getMessage()
    assert "Traceback" in text and "RuntimeError: boom ***" in text and TOKEN not in caplog.text


def test_retry_after_stretches_the_backoff(queue: EventQueue, workers: Workers) -> None:
    queue.enqueue("t", 1)
    sleeps = RecordingClock()

    def busy(server: str, token: str, events: Any, timeout: float) -> UploadOutcome:
        return UploadOutcome("retryable", 503, "HTTP 503 Busy", retry_after=0.03)

    worker = workers(
        queue,
        new_session("http://127.0.0.1:1", TOKEN, None, None, datetime.now(UTC)),
        uploader=busy,
        clock=sleeps,
        backoff_base=0.001,
        backoff_cap=0.05,
    )
    worker.start()
    wait_for(lambda: len(sleeps.snapshot()) >= 2, what="two backoffs")
    assert sleeps.snapshot()[:2] == [0.03, 0.03]


def test_status_survives_a_closed_queue(root: DaemonRoot, rx: Receiver, workers: Workers) -> None:
    queue = open_queue(root, None)
    queue.enqueue_many([("t", 1), ("t", 2)])
    worker = workers(queue, None)
    assert worker.status().queue_depth == 2
    queue.close()
    assert worker.status().queue_depth == 2  # last known, not a crash


def test_worker_survives_queue_errors(root: DaemonRoot, rx: Receiver, workers: Workers) -> None:
    queue = open_queue(root, None)
    worker = workers(queue, session_for(rx))
    queue.close()  # every claim now fails with QueueError
    worker.start()
    wait_for(lambda: worker.status().consecutive_failures >= 3, what="queue failures")
    assert worker.is_alive()
    assert "queue" in (worker.last_failure_reason() or "")


def test_invalid_arguments() -> None:
    class NoQueue:
        pass

    for bad in (
        {"batch_size": 0},
        {"claim_seconds": 0.0},
        {"upload_timeout": -1.0},
        {"idle_poll_seconds": 0},
    ):
        with pytest.raises(ValueError):
            SyncWorker(NoQueue(), None, "i", **bad)  # type: ignore[arg-type]
