"""Poison events never wedge the queue: the worker against the loopback receiver when it refuses
specific events (422), bodies over a size (413), or everything, and with stub uploaders for the exact
sequences. Waits poll observable facts (``wait_for``); the worker's own waits go through a
:class:`~tests.clocks.RecordingClock`, so backoff is recorded, not waited out."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

from synclease.adapters.queue import EventQueue
from synclease.adapters.upload import UploadOutcome
from synclease.core.delivery import MAX_REJECTIONS
from synclease.core.events import Event
from synclease.core.session import Session, new_session
from synclease.daemons.sync.worker import SyncWorker
from tests.clocks import RecordingClock
from tests.conftest import wait_for
from tests.receiver import Receiver
from tests.test_work_worker import (  # noqa: F401 - fixtures
    TOKEN,
    Workers,
    claimed,
    drained,
    queue,
    root,
    rx,
    session_for,
    workers,
)


def rows(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(str(path), timeout=30) as conn:
        return [tuple(r) for r in conn.execute(sql, args)]


def dead_rows(path: Path) -> list[tuple[Any, ...]]:
    return rows(path, "SELECT id, attempts, rejections, last_status, reason FROM dead_letters")


def push_with_poison(queue: EventQueue, good: int, poison_at: Sequence[int]) -> tuple[list[str], list[str]]:
    events = [("test.event", {"n": n}) for n in range(good)]
    for offset, at in enumerate(sorted(poison_at)):
        events.insert(at + offset, ("test.event", {"poison": True, "at": at}))
    ids = queue.enqueue_many(events)
    poison = [ids[i] for i, (_, data) in enumerate(events) if data.get("poison")]
    return [i for i in ids if i not in poison], poison


def session_for_url() -> Session:
    """A session for stub uploaders (nothing listens there)."""
    return new_session("http://127.0.0.1:1", TOKEN, "alice", "core", datetime(2030, 1, 1, tzinfo=UTC))


def settled(worker: SyncWorker, queue: EventQueue, dead: int) -> None:
    wait_for(lambda: queue.counts().dead_letters == dead and queue.counts().depth == 0, what="dead letters")
    wait_for(lambda: not worker.in_flight(), what="the last round to settle")


def test_one_poison_among_300_every_good_event_arrives_once(
    queue: EventQueue, rx: Receiver, workers: Workers
) -> None:
    good, [poison] = push_with_poison(queue, 299, [137])
    rx.reject_events(422)
    worker = workers(queue, session_for(rx))
    worker.start()
    settled(worker, queue, dead=1)
    assert set(good) == rx.accepted_ids and rx.accepted_total == 299  # each good event exactly once
    [(event_id, attempts, rejections, status, reason)] = dead_rows(queue.path)
    assert (event_id, rejections, status) == (poison, MAX_REJECTIONS, 422)
    assert attempts >= MAX_REJECTIONS and reason == f"HTTP 422 {HTTPStatus(422).phrase}"
    alone = [r for r in rx.requests if r.event_ids == [poison]]
    assert len(alone) == MAX_REJECTIONS and {r.status for r in alone} == {422}
    assert max(len(r.event_ids) for r in rx.requests) == 100
    status = worker.status()
    assert status.dead_letters == 1 and status.queue_depth == 0
    wait_for(lambda: worker.status().consecutive_failures == 0, what="success after the dead letter")


def test_several_poisons_are_each_dead_lettered(queue: EventQueue, rx: Receiver, workers: Workers) -> None:
    good, poison = push_with_poison(queue, 250, [0, 99, 100, 249])
    rx.reject_events(400)
    worker = workers(queue, session_for(rx))
    worker.start()
    settled(worker, queue, dead=4)
    assert set(good) == rx.accepted_ids and rx.accepted_total == 250
    assert {r[0] for r in dead_rows(queue.path)} == set(poison)
    assert {r[3] for r in dead_rows(queue.path)} == {400}


def test_413_splits_the_batch_and_a_lone_oversized_event_is_dead_lettered(
    queue: EventQueue, rx: Receiver, workers: Workers
) -> None:
    small = queue.enqueue_many([("t", {"pad": "x" * 400, "n": n}) for n in range(40)])
    [big] = queue.enqueue_many([("t", {"pad": "y" * 6000})])
    rx.max_body = 4096
    worker = workers(queue, session_for(rx))
    worker.start()
    settled(worker, queue, dead=1)
    assert set(small) == rx.accepted_ids and rx.accepted_total == 40
    assert all(r.body_bytes <= 4096 for r in rx.requests if r.status == 200)
    assert 413 in rx.statuses()
    [(event_id, _, _, status, reason)] = dead_rows(queue.path)
    assert (event_id, status) == (big, 413) and reason.startswith("HTTP 413")


def test_batches_are_bounded_by_bytes(queue: EventQueue, rx: Receiver, workers: Workers) -> None:
    ids = queue.enqueue_many([("t", {"pad": "x" * 400, "n": n}) for n in range(60)])
    worker = workers(queue, session_for(rx), batch_max_bytes=4096)
    worker.start()
    drained(worker, queue)
    assert set(ids) == rx.accepted_ids
    assert 413 not in rx.statuses() and all(r.status == 200 for r in rx.requests)
    assert max(r.body_bytes for r in rx.requests) <= 4096 and len(rx.requests) > 1


def test_retryable_and_auth_answers_never_count_as_rejections(
    queue: EventQueue, rx: Receiver, workers: Workers
) -> None:
    ids = queue.enqueue_many([("t", {"poison": True})])
    for status in (429, 408, 503, 401, 403):
        rx.answer(status)
        seen = len(rx.requests)
        worker = workers(queue, session_for(rx), instance_id=f"inst-{status}")
        worker.start()
        wait_for(lambda seen=seen: len(rx.requests) >= seen + 2, what=f"retries on {status}")
        worker.stop(5)
    assert rows(queue.path, "SELECT id, rejections FROM events") == [(ids[0], 0)]
    assert queue.counts().dead_letters == 0


def test_rejection_counts_survive_a_new_worker(queue: EventQueue, rx: Receiver, workers: Workers) -> None:
    good, [poison] = push_with_poison(queue, 20, [0])
    rx.reject_events(422)
    # The first worker really waits out its backoff (up to 1000 s; ``stop`` wakes it): after one refusal
    # of the poison alone it sits in a 30 s backoff, so exactly one refusal is counted when it stops.
    first = workers(
        queue,
        session_for(rx),
        instance_id="inst-first",
        clock=RecordingClock(ceiling=1000.0),
        backoff_cap=30.0,
        backoff_base=30.0,
    )
    first.start()
    wait_for(lambda: rows(queue.path, "SELECT rejections FROM events WHERE id = ?", poison) == [(1,)])
    first.stop(5)
    assert queue.counts().dead_letters == 0
    second = workers(queue, session_for(rx), instance_id="inst-second")
    second.start()
    settled(second, queue, dead=1)
    assert len([r for r in rx.requests if r.event_ids == [poison]]) == MAX_REJECTIONS
    assert set(good) == rx.accepted_ids


def test_a_server_refusing_everything_dead_letters_one_event_per_backoff(
    queue: EventQueue, workers: Workers
) -> None:
    ids = queue.enqueue_many([("t", n) for n in range(4)])
    sent: list[list[str]] = []

    def refuse(server: str, token: str, events: Sequence[Event], timeout: float) -> UploadOutcome:
        sent.append([e.id for e in events])
        return UploadOutcome("rejected", 400, "HTTP 400 Bad Request")

    sleeps = RecordingClock()
    worker = workers(queue, session_for_url(), uploader=refuse, clock=sleeps, idle_poll_seconds=7.0)
    worker.start()
    wait_for(lambda: queue.counts().dead_letters == 4, what="all four dead-lettered")
    worker.stop(5)
    # Each round finds the oldest event alone, counts it and ends with a backoff; never all at once.
    lone = [batch[0] for batch in sent if len(batch) == 1]
    assert lone == [event_id for event_id in ids for _ in range(MAX_REJECTIONS)]
    delays = [d for d in sleeps.snapshot() if d != 7.0]  # not the idle polls
    assert len(delays) >= 4 * (MAX_REJECTIONS - 1)
    assert delays == sorted(delays)  # consecutive failures grow the backoff (capped)


def test_stop_claiming_between_parts_gives_the_rest_back(queue: EventQueue, workers: Workers) -> None:
    queue.enqueue_many([("t", n) for n in range(10)])
    calls: list[int] = []
    holder: list[SyncWorker] = []

    def refuse_then_stop(server: str, token: str, events: Sequence[Event], timeout: float) -> UploadOutcome:
        calls.append(len(events))
        holder[0].stop_claiming()  # superseded while the first upload is on the wire
        return UploadOutcome("rejected", 422, "HTTP 422 Unprocessable Entity")

    worker = workers(queue, session_for_url(), uploader=refuse_then_stop)
    holder.append(worker)
    worker.start()
    wait_for(lambda: not worker.is_alive(), what="the worker to stop")
    assert calls == [10]  # the halves were not sent after stop_claiming
    assert claimed(queue.path) == {None: 10}
    assert rows(queue.path, "SELECT SUM(rejections) FROM events") == [(0,)]


def test_stored_reasons_never_hold_the_token(queue: EventQueue, workers: Workers) -> None:
    [event_id] = queue.enqueue_many([("t", 1)])

    def leaky(server: str, token: str, events: Sequence[Event], timeout: float) -> UploadOutcome:
        return UploadOutcome("rejected", 422, f"HTTP 422 rejected for {token}\nsee body")

    worker = workers(queue, session_for_url(), uploader=leaky)
    worker.start()
    wait_for(lambda: queue.counts().dead_letters == 1, what="dead letter")
    worker.stop(5)
    [(dead_id, _, _, _, reason)] = dead_rows(queue.path)
    assert dead_id == event_id and TOKEN not in reason and "***" in reason and "\n" not in reason
    assert TOKEN not in (worker.last_failure_reason() or "")
