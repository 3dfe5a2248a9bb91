"""Is a lease's holder alive, dead, or was its PID reused? The pure verdict and the kernel facts behind it.

Live tests use real child processes: one holds a per-instance HolderLock the way a daemon does, and is then
killed (by its own PID, reaped in a finally) so the kernel releases the lock.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from synclease.adapters.locks import HolderLock, LockBusy, probe_holder_lock
from synclease.adapters.process import facts as process_facts
from synclease.adapters.process import own_start_time
from synclease.core.constants import START_TIME_TOLERANCE_SECONDS
from synclease.core.identity import HolderVerdict, ProcessFacts, judge_holder, same_start

START = 1_800_000_000.0
SAME = ProcessFacts(exists=True, start_time=START + START_TIME_TOLERANCE_SECONDS / 2)
OTHER = ProcessFacts(exists=True, start_time=START + 3600.0)
GONE = ProcessFacts(exists=False)
HIDDEN = ProcessFacts(exists=True, start_time=None)

ALIVE = HolderVerdict.ALIVE
DEAD = HolderVerdict.DEAD
REUSED = HolderVerdict.PID_REUSED
UNKNOWN = HolderVerdict.UNKNOWN


# --- the pure truth table -----------------------------------------------------------------------

TRUTH_TABLE = [
    # lock held by someone
    (False, SAME, ALIVE),
    (False, OTHER, UNKNOWN),
    (False, GONE, UNKNOWN),
    (False, HIDDEN, UNKNOWN),
    # lock free: nobody holds it
    (True, SAME, UNKNOWN),
    (True, OTHER, REUSED),
    (True, GONE, DEAD),
    (True, HIDDEN, UNKNOWN),
    # lock could not be checked (missing or not a regular file we own)
    (None, SAME, ALIVE),
    (None, OTHER, REUSED),
    (None, GONE, DEAD),
    (None, HIDDEN, UNKNOWN),
]


@pytest.mark.parametrize(("lock_free", "process", "verdict"), TRUTH_TABLE, ids=repr)
def test_judge_holder_truth_table(
    lock_free: bool | None, process: ProcessFacts, verdict: HolderVerdict
) -> None:
    assert judge_holder(START, lock_free, process) is verdict


def test_only_dead_and_reused_are_stale() -> None:
    assert {v for v in HolderVerdict if v.stale} == {DEAD, REUSED}


def test_verdicts_are_plain_strings_for_json() -> None:
    assert [str(v) for v in HolderVerdict] == ["alive", "dead", "pid_reused", "unknown"]


def test_start_time_tolerance_edges() -> None:
    assert same_start(START, START)
    assert same_start(START, START + START_TIME_TOLERANCE_SECONDS)
    assert same_start(START, START - START_TIME_TOLERANCE_SECONDS)
    assert not same_start(START, START + START_TIME_TOLERANCE_SECONDS * 2)
    assert not same_start(START, None)


def test_a_held_lock_never_yields_a_stale_verdict() -> None:
    for process in (SAME, OTHER, GONE, HIDDEN):
        assert not judge_holder(START, False, process).stale


def test_an_unreadable_start_time_never_yields_a_stale_verdict() -> None:
    for lock_free in (True, False, None):
        assert judge_holder(START, lock_free, HIDDEN) is UNKNOWN


# --- the OS adapter -----------------------------------------------------------------------------


def test_process_facts_of_this_process() -> None:
    facts = process_facts(os.getpid())
    assert facts.exists
    assert facts.start_time is not None
    assert same_start(own_start_time(), facts.start_time)


def test_probe_of_a_missing_lock_file_is_none_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "inst.lock"
    assert probe_holder_lock(path) is None
    assert not path.exists()


def test_probe_never_follows_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "target.lock"
    target.write_bytes(b"")
    link = tmp_path / "link.lock"
    link.symlink_to(target)
    assert probe_holder_lock(link) is None


def test_probe_of_a_directory_or_fifo_is_none(tmp_path: Path) -> None:
    (tmp_path / "dir.lock").mkdir()
    os.mkfifo(tmp_path / "fifo.lock")
    assert probe_holder_lock(tmp_path / "dir.lock") is None
    assert probe_holder_lock(tmp_path / "fifo.lock") is None


def test_holder_lock_in_process(tmp_path: Path) -> None:
    path = tmp_path / "inst.lock"
    lock = HolderLock(path)
    lock.acquire()
    try:
        assert probe_holder_lock(path) is False
        with pytest.raises(LockBusy):
            HolderLock(path).acquire()
    finally:
        lock.release()
    assert probe_holder_lock(path) is True
    assert path.exists(), "the lock file stays in place; flock is on the inode"


# --- live: a real holder process ----------------------------------------------------------------

HOLDER_SCRIPT = """
import sys
from pathlib import Path
from synclease.adapters.locks import HolderLock

lock = HolderLock(Path(sys.argv[1]))  # keep a reference for the whole life, as a daemon does
lock.acquire()
print("ready", flush=True)
sys.stdin.read()  # hold until killed, or until the test's end of stdin
"""

BYSTANDER_SCRIPT = """
import sys
print("ready", flush=True)
sys.stdin.read()
"""


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        proc.wait(timeout=30)
        pytest.fail(f"child did not get ready: {line!r}")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    """Kill exactly this child (by its PID) if it still runs, and always reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    path = tmp_path / "leases" / "inst-live-0001.lock"
    path.parent.mkdir(mode=0o700)
    proc = spawn(HOLDER_SCRIPT, str(path))
    try:
        yield proc, path
    finally:
        stop(proc)


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[str]]:
    proc = spawn(BYSTANDER_SCRIPT)
    try:
        yield proc
    finally:
        stop(proc)


def judge_live(recorded_start: float, lock_path: Path, pid: int) -> HolderVerdict:
    return judge_holder(recorded_start, probe_holder_lock(lock_path), process_facts(pid))


@pytest.mark.timeout(60)
def test_live_holder_is_alive(holder: tuple[subprocess.Popen[str], Path]) -> None:
    proc, path = holder
    facts = process_facts(proc.pid)
    assert facts.exists and facts.start_time is not None
    assert probe_holder_lock(path) is False
    assert judge_live(facts.start_time, path, proc.pid) is ALIVE
    assert proc.poll() is None, "probing must not disturb the holder"


@pytest.mark.timeout(60)
def test_killed_holder_is_provably_dead(holder: tuple[subprocess.Popen[str], Path]) -> None:
    proc, path = holder
    facts = process_facts(proc.pid)
    assert facts.start_time is not None
    recorded_start = facts.start_time
    proc.kill()
    proc.wait(timeout=30)
    assert probe_holder_lock(path) is True
    assert process_facts(proc.pid).exists is False
    assert judge_live(recorded_start, path, proc.pid) is DEAD


@pytest.mark.timeout(60)
def test_holder_that_ends_normally_releases_its_lock(holder: tuple[subprocess.Popen[str], Path]) -> None:
    proc, path = holder
    assert proc.stdin is not None
    proc.stdin.close()  # the script reads stdin to EOF and exits without releasing explicitly
    proc.wait(timeout=30)
    assert probe_holder_lock(path) is True


@pytest.mark.timeout(60)
def test_pid_of_an_unrelated_process_is_pid_reused(bystander: subprocess.Popen[str], tmp_path: Path) -> None:
    facts = process_facts(bystander.pid)
    assert facts.start_time is not None
    recorded_start = facts.start_time - 3600.0  # the lease's holder started an hour before this process
    stale_lock = tmp_path / "dead-holder.lock"
    stale_lock.write_bytes(b"")
    stale_lock.chmod(0o600)
    assert judge_live(recorded_start, stale_lock, bystander.pid) is REUSED
    assert judge_live(recorded_start, tmp_path / "no-lock-file.lock", bystander.pid) is REUSED
    assert bystander.poll() is None, "judging never signals anyone"


@pytest.mark.timeout(60)
def test_pid_with_matching_start_but_free_lock_is_unknown(
    bystander: subprocess.Popen[str], tmp_path: Path
) -> None:
    # The recorded process runs but does not hold its lock (starting or retiring): not provably dead.
    facts = process_facts(bystander.pid)
    assert facts.start_time is not None
    free_lock = tmp_path / "free.lock"
    free_lock.write_bytes(b"")
    assert judge_live(facts.start_time, free_lock, bystander.pid) is UNKNOWN


@pytest.mark.timeout(60)
def test_lock_held_by_someone_else_than_the_recorded_pid_is_unknown(
    holder: tuple[subprocess.Popen[str], Path], bystander: subprocess.Popen[str]
) -> None:
    _, path = holder
    facts = process_facts(bystander.pid)
    assert facts.start_time is not None
    assert judge_live(facts.start_time - 3600.0, path, bystander.pid) is UNKNOWN


def test_a_daemon_taking_its_lock_and_minting_its_token_loads_no_lock_library_and_no_hmac(
    tmp_path: Path,
) -> None:
    """What an idle daemon holds in memory (issue #19): its module's imports, its holder lock, its
    ids and token load neither filelock nor secrets/hmac (OpenSSL), uuid/platform or subprocess."""
    code = (
        "import sys\nfrom pathlib import Path\nimport synclease.daemons.sync.__main__\n"
        "from synclease.adapters.ids import new_instance_id, new_token\n"
        "from synclease.adapters.locks import HolderLock\n"
        f"HolderLock(Path({str(tmp_path / 'inst.lock')!r})).acquire()\n"
        "new_instance_id(), new_token()\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    assert not loaded & {"filelock", "secrets", "hmac", "uuid", "platform", "subprocess"}
    assert not {m for m in loaded if m.split(".")[0] in ("typer", "click", "rich")}


def test_holder_lock_creates_its_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "leases" / "hostcli-watch" / "inst.lock"  # a declared family's first lease
    lock = HolderLock(path)
    lock.acquire()
    try:
        assert probe_holder_lock(path) is False
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700  # private, as the root's own dirs
    finally:
        lock.release()
