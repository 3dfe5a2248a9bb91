"""Queue schema v2: byte-bounded claims, durable rejection counts, the dead-letter table, requeue, the
v1 → v2 migration (on a real v1 file), and the read-only inspector that never creates a file."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from synclease.adapters.queue import QUEUE_SCHEMA_VERSION, EventQueue, QueueError, open_queue, queue_path
from synclease.adapters.queue_inspect import inspect_queue, sidecars
from synclease.adapters.root import DaemonRoot
from synclease.core.clock import to_wire
from synclease.core.delivery import MAX_REASON_CHARS
from synclease.core.events import encode_batch
from tests.clocks import FakeClock

#: Written by the schema-v1 ``EventQueue`` (commit 5d51e36) at 2029-06-01T12:00Z: five events, the first
#: two claimed by daemons that then "died" (their 30 s claims lapsed long ago).
V1_FIXTURE = Path(__file__).parent / "data" / "queue-v1.sqlite3"
V1_IDS = [
    "224b55fc3a154c64bed2d98498faeeb6",
    "63823d303e204f73a3cba630aa52acf3",
    "1e825b2421d74fa581995a16a7af98ba",
    "0498578482fc48779c3d22e0c84656e2",
    "75d7be297ae5493e9f428ac423a5e436",
]


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


def columns(path: Path, table: str) -> list[tuple[object, ...]]:
    with raw(path) as conn:
        return [tuple(r) for r in conn.execute(f"PRAGMA table_info({table})")]


def v1_copy(root: DaemonRoot) -> Path:
    path = queue_path(root, None)
    shutil.copyfile(V1_FIXTURE, path)
    os.chmod(path, 0o600)
    return path


# --- byte-bounded claims --------------------------------------------------------------------------


def test_claims_are_bounded_by_bytes_as_well_as_count(queue: EventQueue) -> None:
    queue.enqueue_many([("t", {"pad": "x" * 1000, "n": n}) for n in range(20)])
    probe = queue.claim_batch("probe", 1, 30)
    one = len(encode_batch(probe))
    queue.release("probe", [e.id for e in probe])
    budget = 5 * one
    batch = queue.claim_batch("inst-a", 100, 30, budget)
    assert 1 < len(batch) < 20
    assert len(encode_batch(batch)) <= budget
    nxt = queue.claim_batch("inst-b", 1, 30)
    assert len(encode_batch([*batch, *nxt])) > budget  # the next one would not have fitted
    assert len(queue.claim_batch("inst-c", 3, 30, budget)) == 3  # count still bounds too


def test_an_event_larger_than_the_budget_is_claimed_alone(queue: EventQueue) -> None:
    ids = queue.enqueue_many([("big", "y" * 5000), ("small", 1)])
    batch = queue.claim_batch("inst-a", 100, 30, 1000)
    assert [e.id for e in batch] == ids[:1]
    assert [e.id for e in queue.claim_batch("inst-a", 100, 30, 1000)] == ids[1:]


def test_claim_rejects_a_zero_budget(queue: EventQueue) -> None:
    with pytest.raises(ValueError):
        queue.claim_batch("a", 1, 1.0, 0)


# --- rejections and dead letters ------------------------------------------------------------------


def test_a_rejection_is_counted_durably_and_gives_the_event_back(
    root: DaemonRoot, queue: EventQueue, clock: FakeClock
) -> None:
    ids = queue.enqueue_many([("t", n) for n in range(3)])
    [first] = queue.claim_batch("inst-a", 1, 30)
    assert first.rejections == 0
    assert queue.record_rejection("inst-b", first.id, 422, "not mine") is False
    assert queue.record_rejection("inst-a", first.id, 422, "HTTP 422 Unprocessable Entity") is True
    assert queue.record_rejection("inst-a", first.id, 422, "again") is False  # given back: no longer ours
    queue.close()
    with open_queue(root, "https://x|alice|core", clock) as reopened:
        [again] = reopened.claim_batch("inst-c", 1, 30)
        assert (again.id, again.rejections, again.attempts) == (ids[0], 1, 2)
    with raw(queue.path) as conn:
        row = conn.execute("SELECT last_status, last_reason FROM events WHERE id = ?", (ids[0],)).fetchone()
    assert row == (422, "HTTP 422 Unprocessable Entity")


def test_dead_letter_moves_the_row_with_everything_kept(queue: EventQueue, clock: FakeClock) -> None:
    ids = queue.enqueue_many([("poison.type", {"poison": True, "n": 0}), ("t", 1)])
    [event] = queue.claim_batch("inst-a", 1, 30)
    queue.record_rejection("inst-a", event.id, 422, "r1")
    [event] = queue.claim_batch("inst-a", 1, 30)
    assert queue.dead_letter("inst-b", event.id, 422, "not ours") is False
    clock.advance(60)
    assert queue.dead_letter("inst-a", event.id, 422, "HTTP 422 " + "z" * 500) is True
    assert queue.counts().depth == 1 and queue.counts().dead_letters == 1
    [dead] = queue.dead_letters(10)
    assert dead.id == ids[0] and dead.type == "poison.type"
    assert dead.attempts == 2 and dead.rejections == 2 and dead.last_status == 422
    assert dead.reason == ("HTTP 422 " + "z" * 500)[:MAX_REASON_CHARS]
    assert dead.dead_lettered_at == to_wire(clock.now())
    assert dead.data_bytes == len('{"poison":true,"n":0}') and dead.data_head == '{"poison":true,"n":0}'
    with raw(queue.path) as conn:
        assert conn.execute("SELECT data FROM dead_letters").fetchone()[0] == '{"poison":true,"n":0}'
    # The good event behind it is next.
    assert [e.id for e in queue.claim_batch("inst-a", 10, 30)] == ids[1:]


def test_dead_letters_are_listed_newest_first_and_requeued_to_the_back(
    queue: EventQueue, clock: FakeClock
) -> None:
    ids = queue.enqueue_many([("t", n) for n in range(5)])
    for event_id in ids[:3]:
        [event] = queue.claim_batch("inst-a", 1, 30)
        assert event.id == event_id
        clock.advance(1)
        assert queue.dead_letter("inst-a", event.id, 400, "HTTP 400 Bad Request")
    assert [d.id for d in queue.dead_letters(10)] == ids[2::-1]
    assert [d.id for d in queue.dead_letters(2)] == [ids[2], ids[1]]
    listed, moved = queue.requeue_dead_letters(2)
    assert moved == 3 and [d.id for d in listed] == [ids[2], ids[1]]
    assert queue.counts().dead_letters == 0 and queue.dead_letters(10) == []
    batch = queue.claim_batch("inst-b", 10, 30)
    assert [e.id for e in batch] == ids[3:] + ids[:3]  # back of the FIFO, in their original order
    assert [e.rejections for e in batch] == [0] * 5
    assert [e.data for e in batch] == [3, 4, 0, 1, 2]
    assert queue.requeue_dead_letters(10) == ([], 0)


# --- schema version and migration -----------------------------------------------------------------


def test_a_real_v1_file_is_migrated_keeping_its_events(root: DaemonRoot, clock: FakeClock) -> None:
    path = v1_copy(root)
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        before = conn.execute(
            "SELECT id, type, data, created_at, attempts FROM events ORDER BY rowid"
        ).fetchall()
    assert [r[0] for r in before] == V1_IDS
    with EventQueue(path, clock) as q:  # clock: 2030, so the old claims have lapsed
        assert q.counts().depth == 5 and q.counts().dead_letters == 0
        events = q.claim_batch("new-daemon", 10, 30)
    assert [(e.id, e.type, e.data_json, e.created_at, e.attempts - 1) for e in events] == before
    assert [e.rejections for e in events] == [0] * 5
    assert events[1].data == {"n": 1, "s": "é"}
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == QUEUE_SCHEMA_VERSION == 2
    # A migrated file and a fresh one have the same tables.
    fresh = root.queue_dir / "fresh.sqlite3"
    EventQueue(fresh, clock).close()
    for table in ("events", "dead_letters"):
        assert columns(path, table) == columns(fresh, table)


def test_two_openers_of_a_v1_file_migrate_it_once(root: DaemonRoot, clock: FakeClock) -> None:
    path = v1_copy(root)
    opened: list[EventQueue] = []
    errors: list[BaseException] = []
    go = threading.Barrier(3)

    def open_it() -> None:
        go.wait()
        try:
            opened.append(EventQueue(path, clock))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(opened) == 3
    assert {q.counts().depth for q in opened} == {5}
    for q in opened:
        q.close()
    assert len([c for c in columns(path, "events") if c[1] == "rejections"]) == 1


def test_a_future_version_is_refused_and_left_untouched(root: DaemonRoot, clock: FakeClock) -> None:
    path = queue_path(root, None)
    EventQueue(path, clock).close()
    with raw(path) as conn:
        conn.execute("PRAGMA user_version=3")
    content = path.read_bytes()
    with pytest.raises(QueueError) as info:
        EventQueue(path, clock)
    assert info.value.reason == "unknown_version"
    assert path.read_bytes() == content


# --- the read-only inspector ----------------------------------------------------------------------


def listing(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def test_inspect_a_missing_file_creates_nothing(root: DaemonRoot) -> None:
    path = queue_path(root, None)
    assert inspect_queue(path, "local") is None
    assert list(root.queue_dir.iterdir()) == []


def test_inspect_a_closed_database_creates_no_sidecar(root: DaemonRoot, clock: FakeClock) -> None:
    path = queue_path(root, None)
    with EventQueue(path, clock) as q:
        ids = q.enqueue_many([("t", n) for n in range(4)])
        [event] = q.claim_batch("inst-a", 1, 30)
        q.dead_letter("inst-a", event.id, 422, "HTTP 422 Unprocessable Entity")
    before = listing(root.queue_dir)
    assert before.keys() == {path.name}  # the last connection checkpointed and removed its WAL
    found = inspect_queue(path, "local", dead_letter_limit=10)
    assert found is not None
    assert found.facts.counts is not None and found.facts.problem is None
    assert (found.facts.counts.depth, found.facts.counts.dead_letters) == (3, 1)
    assert found.facts.schema_version == 2
    assert [d.id for d in found.dead_letters] == ids[:1]
    assert listing(root.queue_dir) == before


def test_inspect_sees_uncheckpointed_writes_of_an_open_writer(root: DaemonRoot, clock: FakeClock) -> None:
    path = queue_path(root, None)
    with EventQueue(path, clock) as writer:
        writer.enqueue_many([("t", n) for n in range(7)])
        assert all(os.path.exists(p) for p in sidecars(path)[:2])
        before = listing(root.queue_dir)
        found = inspect_queue(path, "local")
        assert found is not None and found.facts.counts is not None
        assert found.facts.counts.depth == 7
        assert listing(root.queue_dir).keys() == before.keys()


def test_inspect_a_v1_file(root: DaemonRoot) -> None:
    path = v1_copy(root)
    found = inspect_queue(path, "scope", dead_letter_limit=10)
    assert found is not None and found.facts.schema_version == 1
    assert found.facts.counts is not None and found.facts.counts.depth == 5
    assert found.dead_letters == []
    assert listing(root.queue_dir).keys() == {path.name}
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1  # not migrated by a look


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        ("garbage", "not_a_queue_database"),
        ("future", "unknown_version"),
        ("insecure", "insecure_mode"),
        ("symlink", "symlink"),
        ("foreign_tables", "not_a_queue_database"),
    ],
)
def test_inspect_reports_problems_without_touching(
    root: DaemonRoot, clock: FakeClock, tmp_path: Path, make: str, problem: str
) -> None:
    path = queue_path(root, None)
    if make == "garbage":
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"this is not a database at all" * 100)
        os.close(fd)
    elif make == "symlink":
        target = tmp_path / "elsewhere.sqlite3"
        EventQueue(target, clock).close()
        os.symlink(target, path)
    elif make == "foreign_tables":
        with raw(path) as conn:
            conn.execute("CREATE TABLE other (x)")
        os.chmod(path, 0o600)
    else:
        EventQueue(path, clock).close()
        if make == "future":
            with raw(path) as conn:
                conn.execute("PRAGMA user_version=3")
        else:
            os.chmod(path, 0o640)
    before = listing(root.queue_dir)
    found = inspect_queue(path, "local")
    assert found is not None and found.facts.counts is None
    assert found.facts.problem == problem
    assert listing(root.queue_dir) == before


def test_inspect_an_empty_precreated_file(root: DaemonRoot) -> None:
    path = queue_path(root, None)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    found = inspect_queue(path, "local")
    assert found is not None and found.facts.counts is not None
    assert (found.facts.schema_version, found.facts.counts.depth) == (0, 0)
    assert listing(root.queue_dir).keys() == {path.name}
