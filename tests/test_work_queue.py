"""The durable queue: claims, expiry, release, validation, hostile files and two processes at once."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from synclease.adapters.queue import EventQueue, QueueError, open_queue, queue_path, scope_digest
from synclease.adapters.root import DaemonRoot
from synclease.core.clock import from_wire
from synclease.core.errors import EXIT_USAGE, BadInputError
from synclease.core.events import MAX_EVENT_TYPE_CHARS, parse_ndjson_events
from tests.clocks import FakeClock


@pytest.fixture
def root(tmp_path: Path) -> DaemonRoot:
    return DaemonRoot(tmp_path / "root").prepare()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(root: DaemonRoot, clock: FakeClock) -> Iterator[EventQueue]:
    q = open_queue(root, "https://x|alice|core", clock)
    yield q
    q.close()


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), timeout=30)


def claimed_rows(path: Path) -> list[tuple[str, str | None]]:
    with raw(path) as conn:
        return conn.execute("SELECT id, claimed_by FROM events WHERE claimed_by IS NOT NULL").fetchall()


# --- layout and file safety -----------------------------------------------------------------------


def test_one_database_per_auth_scope(root: DaemonRoot) -> None:
    a = queue_path(root, "https://x|alice|core")
    b = queue_path(root, "https://x|bob|core")
    local = queue_path(root, None)
    assert len({a, b, local}) == 3
    assert a.parent == root.queue_dir
    assert a.name == f"{scope_digest('https://x|alice|core')}.sqlite3"
    assert local.name == f"{scope_digest('local')}.sqlite3"
    assert queue_path(root, "") == local


def test_files_are_private_and_wal(queue: EventQueue) -> None:
    queue.enqueue("t", {"a": 1})
    for path in (queue.path, *(queue.path.with_name(queue.path.name + s) for s in ("-wal", "-shm"))):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    with raw(queue.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert queue._connection().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_refuses_symlink(root: DaemonRoot, tmp_path: Path, clock: FakeClock) -> None:
    target = tmp_path / "elsewhere.sqlite3"
    EventQueue(target, clock).close()
    path = queue_path(root, None)
    os.symlink(target, path)
    with pytest.raises(QueueError) as info:
        EventQueue(path, clock)
    assert info.value.reason == "symlink"


def test_refuses_insecure_mode(root: DaemonRoot, clock: FakeClock) -> None:
    path = queue_path(root, None)
    EventQueue(path, clock).close()
    os.chmod(path, 0o644)
    with pytest.raises(QueueError) as info:
        EventQueue(path, clock)
    assert info.value.reason == "insecure_mode"


def test_refuses_garbage_file(root: DaemonRoot, clock: FakeClock) -> None:
    path = queue_path(root, None)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"this is not a database at all" * 100)
    os.close(fd)
    with pytest.raises(QueueError) as info:
        EventQueue(path, clock)
    assert info.value.reason == "not_a_queue_database"


def test_refuses_unknown_schema_version(root: DaemonRoot, clock: FakeClock) -> None:
    path = queue_path(root, None)
    EventQueue(path, clock).close()
    with raw(path) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(QueueError) as info:
        EventQueue(path, clock)
    assert info.value.reason == "unknown_version"


def test_closed_queue_raises_queue_error(queue: EventQueue) -> None:
    queue.close()
    queue.close()  # idempotent
    with pytest.raises(QueueError):
        queue.depth()
    with pytest.raises(QueueError):
        queue.enqueue("t", 1)


def test_reopen_keeps_events(root: DaemonRoot, clock: FakeClock) -> None:
    with open_queue(root, None, clock) as q:
        ids = q.enqueue_many([("t", i) for i in range(5)])
    with open_queue(root, None, clock) as q:
        assert q.depth() == 5
        assert [e.id for e in q.claim_batch("inst-a", 10, 30)] == ids


# --- enqueue and validation -----------------------------------------------------------------------


def test_enqueue_assigns_unique_ids_and_created_at(queue: EventQueue, clock: FakeClock) -> None:
    first = queue.enqueue("build.finished", {"ok": True, "n": [1, 2.5, None, "é"]})
    ids = queue.enqueue_many([("a", 1), ("b", "two"), ("c", None)])
    assert len({first, *ids}) == 4
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in [first, *ids])
    assert queue.depth() == 4
    events = queue.claim_batch("inst-a", 10, 30)
    assert [e.id for e in events] == [first, *ids]  # FIFO
    assert events[0].type == "build.finished"
    assert events[0].data == {"ok": True, "n": [1, 2.5, None, "é"]}
    assert events[0].created_at.endswith("Z")
    assert from_wire(events[0].created_at) == clock.now()


def test_enqueue_many_empty(queue: EventQueue) -> None:
    assert queue.enqueue_many([]) == []
    assert queue.depth() == 0


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("", 1),
        ("   ", 1),
        (None, 1),
        (42, 1),
        ("x" * (MAX_EVENT_TYPE_CHARS + 1), 1),
        ("bad\ntype", 1),
        ("t", object()),
        ("t", {1, 2}),
        ("t", float("nan")),
        ("t", {"x": float("inf")}),
        ("t", b"bytes"),
        ("t", "x" * (1024 * 1024 + 1)),
    ],
)
def test_bad_events_are_bad_input(queue: EventQueue, event_type: object, data: object) -> None:
    with pytest.raises(BadInputError) as info:
        queue.enqueue(event_type, data)  # type: ignore[arg-type]
    assert info.value.exit_code == EXIT_USAGE
    assert "\n" not in info.value.one_line()
    assert queue.depth() == 0


def test_enqueue_many_is_all_or_nothing(queue: EventQueue) -> None:
    with pytest.raises(BadInputError):
        queue.enqueue_many([("ok", 1), ("ok", 2), ("bad", object())])
    assert queue.depth() == 0


def test_max_type_length_accepted(queue: EventQueue) -> None:
    queue.enqueue("x" * MAX_EVENT_TYPE_CHARS, None)
    assert queue.depth() == 1


# --- claims ---------------------------------------------------------------------------------------


def test_claim_complete_release(queue: EventQueue) -> None:
    ids = queue.enqueue_many([("t", i) for i in range(10)])
    batch = queue.claim_batch("inst-a", 4, 30)
    assert [e.id for e in batch] == ids[:4]
    assert all(e.attempts == 1 for e in batch)
    # Another instance gets the next ones, never the claimed ones.
    other = queue.claim_batch("inst-b", 4, 30)
    assert [e.id for e in other] == ids[4:8]
    # Completing someone else's claim does nothing; one's own deletes.
    assert queue.complete("inst-b", [e.id for e in batch]) == 0
    assert queue.complete("inst-a", [e.id for e in batch]) == 4
    assert queue.depth() == 6
    # Releasing someone else's claim does nothing; one's own makes them claimable at once.
    assert queue.release("inst-a", [e.id for e in other]) == 0
    assert queue.release("inst-b", [e.id for e in other]) == 4
    again = queue.claim_batch("inst-c", 10, 30)
    assert [e.id for e in again] == ids[4:]
    assert [e.attempts for e in again] == [2, 2, 2, 2, 1, 1]
    assert queue.claim_batch("inst-d", 10, 30) == []
    assert queue.complete("inst-c", []) == 0
    assert queue.release("inst-c", []) == 0


def test_expired_claim_is_reclaimed_by_another_instance(queue: EventQueue, clock: FakeClock) -> None:
    ids = queue.enqueue_many([("t", i) for i in range(3)])
    assert len(queue.claim_batch("crashed", 10, 30)) == 3  # then the holder dies
    assert queue.claim_batch("successor", 10, 30) == []
    clock.advance(29.9)
    assert queue.claim_batch("successor", 10, 30) == []
    clock.advance(0.2)
    batch = queue.claim_batch("successor", 10, 30)
    assert [e.id for e in batch] == ids
    assert all(e.attempts == 2 for e in batch)
    # The dead holder's late complete must not delete what the successor now holds.
    assert queue.complete("crashed", ids) == 0
    assert queue.complete("successor", ids) == 3
    assert queue.depth() == 0


def test_claim_validates_arguments(queue: EventQueue) -> None:
    for args in (("", 1, 1.0), ("a", 0, 1.0), ("a", 1, 0.0), ("a", 1, float("nan"))):
        with pytest.raises(ValueError):
            queue.claim_batch(*args)


def test_hostile_claim_without_expiry_is_claimable(queue: EventQueue) -> None:
    queue.enqueue("t", 1)
    with raw(queue.path) as conn:
        conn.execute("UPDATE events SET claimed_by = 'ghost', claim_expires_at = NULL")
    assert len(queue.claim_batch("inst-a", 10, 30)) == 1


def test_large_batches_are_chunked(queue: EventQueue) -> None:
    ids = queue.enqueue_many([("t", i) for i in range(1200)])
    batch = queue.claim_batch("inst-a", 1200, 30)
    assert len(batch) == 1200
    assert queue.release("inst-a", ids) == 1200
    batch = queue.claim_batch("inst-a", 5000, 30)
    assert queue.complete("inst-a", [e.id for e in batch]) == 1200
    assert queue.depth() == 0


def test_two_connections_see_each_other(root: DaemonRoot, clock: FakeClock) -> None:
    with open_queue(root, None, clock) as daemon, open_queue(root, None, clock) as cli:
        ids = cli.enqueue_many([("t", i) for i in range(3)])
        assert daemon.depth() == 3
        assert [e.id for e in daemon.claim_batch("inst-a", 10, 30)] == ids
        assert cli.claim_batch("inst-b", 10, 30) == []


def test_adopt_from_moves_events_keeping_ids(root: DaemonRoot, clock: FakeClock) -> None:
    with open_queue(root, None, clock) as local, open_queue(root, "https://x||", clock) as scoped:
        ids = local.enqueue_many([("t", i) for i in range(7)])
        held = local.claim_batch("someone", 2, 30)  # a live claim is not stolen
        assert scoped.adopt_from(local, batch=3) == 5
        assert local.depth() == 2
        moved = scoped.claim_batch("inst-a", 10, 30)
        assert [e.id for e in moved] == ids[2:]
        assert [e.data for e in moved] == list(range(2, 7))
        assert {e.id for e in held} == set(ids[:2])


# --- NDJSON ---------------------------------------------------------------------------------------


def test_parse_ndjson_events() -> None:
    lines = ['{"type": "a", "data": {"x": 1}}\n', "\n", '  {"type": "b"}  ', '{"data": [1], "type": "c"}']
    assert parse_ndjson_events(lines) == [("a", {"x": 1}), ("b", None), ("c", [1])]
    assert parse_ndjson_events([]) == []


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("{not json", "line 3:"),
        ("[1, 2]", "not a JSON object"),
        ('{"data": 1}', "event type"),
        ('{"type": ""}', "event type"),
        ('{"type": 5}', "event type"),
        ('{"type": "a", "id": "mine"}', "unknown key 'id'"),
        ('{"type": "a", "data": NaN}', "line 3:"),
        ('"just a string"', "not a JSON object"),
    ],
)
def test_parse_ndjson_events_names_the_bad_line(bad: str, needle: str) -> None:
    lines = ['{"type": "ok"}', "", bad, '{"type": "ok"}']
    with pytest.raises(BadInputError) as info:
        parse_ndjson_events(lines)
    text = info.value.one_line()
    assert text.startswith("line 3: ")
    assert needle in text
    assert info.value.exit_code == EXIT_USAGE


# --- two processes at once ------------------------------------------------------------------------

_CHILD = """
import json, sys
from pathlib import Path
from synclease.adapters.queue import EventQueue
q = EventQueue(Path(sys.argv[1]))
sys.stdin.readline()  # the go signal: both children start enqueuing together
ids = [q.enqueue("child", {"n": n, "who": sys.argv[2]}) for n in range(int(sys.argv[3]))]
q.close()
print(json.dumps(ids))
"""


def test_two_processes_enqueue_while_a_third_claims_nothing_lost(root: DaemonRoot) -> None:
    path = queue_path(root, None)
    per_child = 150
    consumer = EventQueue(path)  # real clock: claims must be comparable across processes
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), name, str(per_child)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()

    completed: list[str] = []
    done = threading.Event()

    def consume() -> None:
        while not done.is_set():
            batch = consumer.claim_batch("consumer", 25, 60)
            if batch:
                assert consumer.complete("consumer", [e.id for e in batch]) == len(batch)
                completed.extend(e.id for e in batch)
            else:
                done.wait(0.005)

    thread = threading.Thread(target=consume)
    thread.start()
    try:
        outputs = [child.communicate(timeout=60) for child in children]
    finally:
        done.set()
        thread.join(30)
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    enqueued = [i for out, _ in outputs for i in json.loads(out)]
    assert len(enqueued) == 2 * per_child
    assert len(set(enqueued)) == len(enqueued)
    remaining = [e.id for e in consumer.claim_batch("consumer", 10_000, 60)]
    assert len(completed) == len(set(completed))
    assert sorted(completed + remaining) == sorted(enqueued)
    consumer.close()
