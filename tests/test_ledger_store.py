"""The ledger store: private files, one locked write per event, bounded rotation, defensive reads.

Hostile paths (symlinks, FIFOs, directories, insecure or foreign files) are refused by writers and
reported by readers, never followed; I/O faults come back as an :class:`Appended` problem, never an
exception; a reader never creates anything and never reads more than its bound.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from synclease.adapters.ledger_store import Appended, LedgerStore
from synclease.adapters.locks import file_lock
from synclease.adapters.root import DaemonRoot
from synclease.core.errors import SyncleaseError
from synclease.core.ledger import MAX_LINE_BYTES, EventEvidence, EventKind, LedgerEvent
from synclease.core.ledger_codec import encode_event
from synclease.core.reasons import LedgerReason
from tests.clocks import FakeClock

T0 = datetime(2026, 7, 1, 8, 0, 0, tzinfo=UTC)
SMALL = 2 * MAX_LINE_BYTES  # the smallest bound a store accepts: rotations come quickly
SCHEMA = Draft202012Validator(
    json.loads((Path(__file__).resolve().parent.parent / "protocol" / "ledger-v1.schema.json").read_text())
)


def event(i: int, kind: EventKind = EventKind.RETIRED, tail: int = 0) -> LedgerEvent:
    return LedgerEvent(
        at=T0 + timedelta(seconds=i),
        kind=kind,
        instance_id=f"inst-{i:08d}",
        pid=1000 + i,
        port=9400 + i % 50,
        package_version="2.0.0",
        reason=LedgerReason.IDLE if kind is EventKind.RETIRED else None,
        evidence=EventEvidence(
            idle_seconds=900.0, log_tail=tuple(f"log {i} line {n}" for n in range(tail)) or None
        ),
    )


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def put(path: Path, data: bytes, mode: int = 0o600) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, mode)
    return path


@pytest.fixture
def root(tmp_path: Path) -> DaemonRoot:
    return DaemonRoot(tmp_path / "root").prepare()


@pytest.fixture
def store(root: DaemonRoot) -> LedgerStore:
    return LedgerStore(root)


# --- appending and reading ----------------------------------------------------------------------


def test_append_then_read(store: LedgerStore) -> None:
    events = [event(i) for i in range(5)]
    for e in events:
        assert store.append(e) == Appended(True)
    result = store.read()
    assert result.events == tuple(events)
    assert (result.skipped, result.problems) == (0, ())


def test_ledger_is_0600_in_a_0700_dir_even_with_a_permissive_umask(tmp_path: Path) -> None:
    root = DaemonRoot(tmp_path / "root")
    root.path.mkdir(mode=0o700)
    old = os.umask(0)
    try:
        assert LedgerStore(root).append(event(1)).ok  # the directory is created by the append
    finally:
        os.umask(old)
    assert mode_of(root.ledger_dir) == 0o700
    assert mode_of(root.ledger_path) == 0o600
    assert mode_of(root.ledger_lock_path) == 0o600


def test_lines_on_disk_are_the_encoded_events_and_validate(store: LedgerStore) -> None:
    events = [event(1), event(2, EventKind.VANISHED, tail=25)]
    for e in events:
        store.append(e)
    lines = store.path.read_bytes().splitlines(keepends=True)
    assert lines == [encode_event(e) for e in events]
    for line in lines:
        assert len(line) <= MAX_LINE_BYTES
        assert not list(SCHEMA.iter_errors(json.loads(line)))


def test_each_event_is_exactly_one_write(store: LedgerStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.append(event(0))
    with store.path.open("ab") as handle:
        handle.write(b'{"torn":')  # a fragment, so the append must also add a newline
    real_write = os.write
    calls: list[int] = []

    def counting(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting)
    assert store.append(event(1)).ok
    assert store.append(event(2, EventKind.VANISHED, tail=20)).ok
    monkeypatch.undo()
    assert len(calls) == 2, calls


def test_a_writer_killed_right_after_its_first_write_leaves_a_whole_line(
    store: LedgerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.append(event(0))
    real_write = os.write

    def write_then_die(fd: int, data: bytes) -> int:
        real_write(fd, data)
        raise KeyboardInterrupt  # the process is gone before any further syscall

    monkeypatch.setattr(os, "write", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        store.append(event(1, EventKind.VANISHED, tail=20))
    monkeypatch.undo()
    assert store.path.read_bytes().endswith(b"\n")
    assert store.read().events == (event(0), event(1, EventKind.VANISHED, tail=20))


def test_a_torn_fragment_stays_one_bad_line(store: LedgerStore) -> None:
    store.append(event(0))
    with store.path.open("ab") as handle:
        handle.write(encode_event(event(99))[:40])  # a writer that died mid-line
    store.append(event(1))
    result = store.read()
    assert result.events == (event(0), event(1))
    assert result.skipped == 1


def test_hostile_lines_are_skipped_and_counted(store: LedgerStore) -> None:
    store.append(event(0))
    with store.path.open("ab") as handle:
        handle.write(b"\x00\xff binary\n" + b"not json\n" + b"[1]\n" + b"{}\n" + b"x" * 100_000 + b"\n")
        handle.write(encode_event(event(5)).replace(b'"schema_version":1', b'"schema_version":9'))
    store.append(event(1))
    result = store.read()
    assert result.events == (event(0), event(1))
    assert result.skipped == 6


# --- nothing is created by a reader -------------------------------------------------------------


def test_a_missing_ledger_is_an_empty_history_and_reading_creates_nothing(tmp_path: Path) -> None:
    root = DaemonRoot(tmp_path / "root")
    assert LedgerStore(root).read().events == ()
    assert not root.path.exists()
    root.path.mkdir(mode=0o700)
    assert LedgerStore(root).read() == LedgerStore(root).read()
    assert list(root.path.iterdir()) == []
    root.ledger_dir.mkdir(mode=0o700)
    assert LedgerStore(root).read().events == ()
    assert list(root.ledger_dir.iterdir()) == []


def test_append_without_a_root_creates_nothing(tmp_path: Path) -> None:
    root = DaemonRoot(tmp_path / "gone")
    result = LedgerStore(root).append(event(1))
    assert (result.ok, result.problem) == (False, "missing_root")
    assert not root.path.exists()


# --- hostile paths ------------------------------------------------------------------------------


def _symlink(root: DaemonRoot, tmp_path: Path) -> None:
    victim = put(tmp_path / "victim.txt", b"precious\n")
    root.ledger_path.symlink_to(victim)


def _dangling(root: DaemonRoot, tmp_path: Path) -> None:
    root.ledger_path.symlink_to(tmp_path / "nowhere")


def _fifo(root: DaemonRoot, tmp_path: Path) -> None:
    os.mkfifo(root.ledger_path, 0o600)


def _directory(root: DaemonRoot, tmp_path: Path) -> None:
    root.ledger_path.mkdir(mode=0o700)


def _world_writable(root: DaemonRoot, tmp_path: Path) -> None:
    put(root.ledger_path, encode_event(event(7)), mode=0o666)


def _group_readable(root: DaemonRoot, tmp_path: Path) -> None:
    put(root.ledger_path, encode_event(event(7)), mode=0o640)


def _foreign(root: DaemonRoot, tmp_path: Path) -> None:
    os.chown(put(root.ledger_path, encode_event(event(7))), 65534, 65534)


HOSTILE: dict[str, tuple[Callable[[DaemonRoot, Path], None], str]] = {
    "symlink": (_symlink, "symlink"),
    "dangling-symlink": (_dangling, "symlink"),
    "fifo": (_fifo, "not_regular_file"),
    "directory": (_directory, "not_regular_file"),
    "world-writable": (_world_writable, "insecure_mode"),
    "group-readable": (_group_readable, "insecure_mode"),
    "foreign-owner": (_foreign, "foreign_owner"),
}


def _needs_root(name: str) -> None:
    if name == "foreign_owner" and os.geteuid() != 0:
        pytest.skip("needs root to plant a file owned by another uid")


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("plant", "reason"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_ledger_is_refused_by_append_and_never_followed(
    store: LedgerStore,
    root: DaemonRoot,
    tmp_path: Path,
    plant: Callable[[DaemonRoot, Path], None],
    reason: str,
) -> None:
    _needs_root(reason)
    plant(root, tmp_path)
    before = os.lstat(root.ledger_path)
    result = store.append(event(1))
    assert (result.ok, result.problem) == (False, reason)
    assert "not recorded" in result.one_line()
    after = os.lstat(root.ledger_path)
    assert (after.st_ino, after.st_size, after.st_mode) == (before.st_ino, before.st_size, before.st_mode)
    assert not (tmp_path / "nowhere").exists()
    if (tmp_path / "victim.txt").exists():
        assert (tmp_path / "victim.txt").read_bytes() == b"precious\n"


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("plant", "reason"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_ledger_is_reported_by_readers_and_never_followed(
    store: LedgerStore,
    root: DaemonRoot,
    tmp_path: Path,
    plant: Callable[[DaemonRoot, Path], None],
    reason: str,
) -> None:
    _needs_root(reason)
    put(root.ledger_rotated_path, encode_event(event(0)))
    plant(root, tmp_path)
    result = store.read()
    assert result.events == (event(0),)  # the rotated file is still read
    assert [(p.path, p.reason) for p in result.problems] == [(root.ledger_path, reason)]


def test_a_hostile_rotated_file_is_reported_and_the_current_one_read(
    store: LedgerStore, root: DaemonRoot, tmp_path: Path
) -> None:
    root.ledger_rotated_path.symlink_to(put(tmp_path / "victim.jsonl", encode_event(event(9))))
    store.append(event(1))
    result = store.read()
    assert result.events == (event(1),)
    assert [(p.path, p.reason) for p in result.problems] == [(root.ledger_rotated_path, "symlink")]


def test_a_symlinked_ledger_dir_is_refused_by_both(root: DaemonRoot, tmp_path: Path) -> None:
    root.ledger_dir.rmdir()
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    root.ledger_dir.symlink_to(tmp_path / "elsewhere")
    store = LedgerStore(root)
    assert store.append(event(1)).problem == "unusable_dir"
    assert [p.reason for p in store.read().problems] == ["unusable_dir"]
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_hostile_lock_file_is_refused(store: LedgerStore, root: DaemonRoot, tmp_path: Path) -> None:
    root.ledger_lock_path.symlink_to(put(tmp_path / "victim", b"keep"))
    result = store.append(event(1))
    assert (result.ok, result.problem) == (False, "bad_lock")
    assert (tmp_path / "victim").read_bytes() == b"keep"
    assert not root.ledger_path.exists()


def test_a_busy_lock_is_a_result_not_a_hang(root: DaemonRoot) -> None:
    store = LedgerStore(root, lock_timeout=0.05)
    with file_lock(root.ledger_lock_path, 1.0, busy_hint="test"):
        result = store.append(event(1))
    assert (result.ok, result.problem) == (False, "busy")
    assert store.append(event(2)).ok


def test_a_busy_lock_is_waited_for_on_the_clock(root: DaemonRoot) -> None:
    clock = FakeClock()
    with file_lock(root.ledger_lock_path, 1.0, busy_hint="test"), pytest.raises(SyncleaseError) as raised:
        with file_lock(root.ledger_lock_path, 0.3, busy_hint="retry", clock=clock):
            pass
    assert "is busy" in raised.value.one_line()
    # polled every 0.05 s until the timeout, on the clock: no real sleep
    assert sum(clock.slept) == pytest.approx(0.3)
    assert max(clock.slept) == pytest.approx(0.05)


# --- I/O faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "problem"),
    [(errno.ENOSPC, "disk_full"), (errno.EDQUOT, "disk_full"), (errno.EIO, "io_error")],
)
def test_a_failed_write_is_a_result_and_leaves_the_file_whole(
    store: LedgerStore, monkeypatch: pytest.MonkeyPatch, code: int, problem: str
) -> None:
    store.append(event(0))

    def failing(fd: int, data: bytes) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "write", failing)
    result = store.append(event(1))
    monkeypatch.undo()
    assert (result.ok, result.problem, result.detail) == (False, problem, os.strerror(code))
    assert store.path.read_bytes() == encode_event(event(0))


def test_a_short_write_is_cut_back_off(store: LedgerStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.append(event(0))
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:30]))
    result = store.append(event(1))
    monkeypatch.undo()
    assert (result.ok, result.problem) == (False, "short_write")
    assert store.path.read_bytes() == encode_event(event(0))
    assert store.append(event(2)).ok
    assert store.read().events == (event(0), event(2))


CHILD = """
import json, os, resource, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from synclease.adapters.ledger_store import LedgerStore
from synclease.adapters.root import DaemonRoot
from synclease.core.ledger import EventKind, LedgerEvent

store = LedgerStore(DaemonRoot(Path(sys.argv[1])))
event = LedgerEvent(at=datetime.now(UTC), kind=EventKind.SERVING, instance_id="child-inst-01",
                    pid=os.getpid(), port=None, package_version="1")
if sys.argv[2] == "fsize":  # a real short write: the file may grow by 100 bytes only
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    size = os.path.getsize(store.path)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, resource.RLIM_INFINITY))
else:  # EMFILE: every descriptor in use
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    held = []
    try:
        while True:
            held.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        pass
result = store.append(event)
print(json.dumps([result.ok, result.problem]))
"""


@pytest.mark.parametrize(("mode", "problem"), [("fsize", "short_write"), ("emfile", "too_many_files")])
def test_real_resource_limits_are_results_never_exceptions(
    store: LedgerStore, mode: str, problem: str
) -> None:
    store.append(event(0))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(store.root.path), mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert json.loads(out) == [False, problem]
    assert store.path.read_bytes() == encode_event(event(0))


# --- rotation -----------------------------------------------------------------------------------


def test_rotation_happens_before_a_line_would_pass_the_bound(root: DaemonRoot) -> None:
    store = LedgerStore(root, max_file_bytes=SMALL)
    line = len(encode_event(event(0)))
    appended = 0
    while (appended + 1) * line <= SMALL:
        assert store.append(event(appended)) == Appended(True)
        appended += 1
    assert store.path.stat().st_size == appended * line
    result = store.append(event(appended))
    assert result == Appended(True, rotated=True)
    assert store.rotated_path.stat().st_size == appended * line <= SMALL
    assert store.path.read_bytes() == encode_event(event(appended))


def test_rotation_keeps_exactly_one_older_file(root: DaemonRoot) -> None:
    store = LedgerStore(root, max_file_bytes=SMALL)
    rotations = 0
    appended: list[LedgerEvent] = []
    while rotations < 5:
        appended.append(event(len(appended), tail=len(appended) % 7))
        rotations += store.append(appended[-1]).rotated
    assert sorted(p.name for p in root.ledger_dir.iterdir()) == [
        "sync.jsonl",
        "sync.jsonl.1",
        "sync.jsonl.lock",
    ]
    assert store.path.stat().st_size <= SMALL and store.rotated_path.stat().st_size <= SMALL
    result = store.read()
    assert (result.skipped, result.problems) == (0, ())
    kept = list(result.events)
    assert kept == appended[-len(kept) :]  # the newest events, in order, across the rotation
    assert len(kept) > 2


def test_newest_first_is_read_reversed_across_the_rotation(root: DaemonRoot) -> None:
    store = LedgerStore(root, max_file_bytes=SMALL)
    appended: list[LedgerEvent] = []
    while not store.rotated_path.exists() or len(appended) < 12:
        appended.append(event(len(appended)))
        store.append(appended[-1])
    with store.path.open("ab") as handle:
        handle.write(b"not json\n" + encode_event(event(98)).rstrip(b"\n"))  # a bad line, one in flight
    assert list(store.newest_first()) == list(reversed(store.read().events))
    assert list(store.newest_first())[:2] == [appended[-1], appended[-2]]


def test_newest_first_decodes_only_what_the_caller_takes(
    store: LedgerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synclease.adapters import ledger_store

    for i in range(50):
        store.append(event(i))
    decoded: list[bytes] = []
    real = ledger_store.decode_event

    def counting(raw: bytes) -> LedgerEvent:
        decoded.append(raw)
        return real(raw)

    monkeypatch.setattr(ledger_store, "decode_event", counting)
    newest = store.newest_first()
    assert next(newest) == event(49)
    assert next(newest) == event(48)
    assert len(decoded) == 2


def test_newest_first_of_a_missing_or_hostile_ledger_is_empty(root: DaemonRoot, tmp_path: Path) -> None:
    assert list(LedgerStore(root).newest_first()) == []
    _symlink(root, tmp_path)
    assert list(LedgerStore(root).newest_first()) == []


def test_the_default_bound_is_one_mebibyte(store: LedgerStore) -> None:
    assert store.max_file_bytes == 1024 * 1024
    with pytest.raises(ValueError):
        LedgerStore(store.root, max_file_bytes=MAX_LINE_BYTES)


def test_a_rotation_that_cannot_happen_records_nothing(root: DaemonRoot) -> None:
    store = LedgerStore(root, max_file_bytes=SMALL)
    root.ledger_rotated_path.mkdir(mode=0o700)
    for _ in range(SMALL // len(encode_event(event(1)))):
        assert store.append(event(1)) == Appended(True)
    before = store.path.read_bytes()
    result = store.append(event(2))
    assert (result.ok, result.problem) == (False, "rotate_failed")
    assert store.path.read_bytes() == before  # bounded: the file never grows past the bound


def test_rotation_replaces_a_planted_symlink_without_following_it(root: DaemonRoot, tmp_path: Path) -> None:
    store = LedgerStore(root, max_file_bytes=SMALL)
    victim = put(tmp_path / "victim", b"precious\n")
    root.ledger_rotated_path.symlink_to(victim)
    while not store.append(event(3)).rotated:
        pass
    assert victim.read_bytes() == b"precious\n"
    assert not root.ledger_rotated_path.is_symlink()


def test_an_unterminated_end_of_the_rotated_file_counts_as_skipped(root: DaemonRoot) -> None:
    store = LedgerStore(root, max_file_bytes=SMALL)
    put(root.ledger_rotated_path, encode_event(event(0)) + b'{"half')
    store.append(event(1))
    assert store.read().events == (event(0), event(1))
    assert store.read().skipped == 1


# --- bounded reads ------------------------------------------------------------------------------


def test_a_giant_ledger_is_read_only_up_to_the_bound(
    store: LedgerStore, root: DaemonRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = encode_event(event(0))
    giant = line * (3 * 1024 * 1024 // len(line))  # 3 MiB, planted by someone ignoring the bound
    put(root.ledger_path, giant)
    put(root.ledger_rotated_path, giant)
    real_pread = os.pread
    read_bytes: list[int] = []

    def counting(fd: int, size: int, offset: int) -> bytes:
        data = real_pread(fd, size, offset)
        read_bytes.append(len(data))
        return data

    monkeypatch.setattr(os, "pread", counting)
    result = store.read()
    monkeypatch.undo()
    bound = store.max_file_bytes + MAX_LINE_BYTES
    assert sum(read_bytes) <= 2 * bound
    assert [p.reason for p in result.problems] == ["too_large", "too_large"]
    assert result.skipped == 2  # the line each bound cut through
    assert len(result.events) >= 2 * (store.max_file_bytes // len(line)) - 2
    assert set(result.events) == {event(0)}


def test_a_reader_never_trusts_a_line_over_4_kib(store: LedgerStore, root: DaemonRoot) -> None:
    big = encode_event(event(0)).replace(b'"reason"', b'"padding":"' + b"p" * MAX_LINE_BYTES + b'","reason"')
    put(root.ledger_path, big + encode_event(event(1)))
    result = store.read()
    assert (result.events, result.skipped) == ((event(1),), 1)


# --- once per instance --------------------------------------------------------------------------


def test_vanished_is_recorded_once_per_instance(store: LedgerStore) -> None:
    gone = event(5, EventKind.VANISHED, tail=3)
    assert store.append(gone, once=True).ok
    second = store.append(gone, once=True)
    assert (second.ok, second.problem) == (False, "already_ended")
    retired = event(6)
    store.append(retired)
    late = LedgerEvent(
        at=T0,
        kind=EventKind.VANISHED,
        instance_id=retired.instance_id,
        pid=1,
        port=None,
        package_version=None,
    )
    assert store.append(late, once=True).problem == "already_ended"
    assert [e.kind for e in store.read().events] == [EventKind.VANISHED, EventKind.RETIRED]


def test_appended_renders_one_line() -> None:
    assert Appended(True).one_line() == "ledger event recorded"
    assert Appended(True, rotated=True).one_line() == "ledger event recorded (ledger rotated)"
    assert Appended(False, "disk_full", "No space left on device").one_line() == (
        "ledger event not recorded (disk_full: No space left on device)"
    )
