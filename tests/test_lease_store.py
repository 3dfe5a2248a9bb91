"""The lease store: atomic writes, defensive reads, own-only deletion, the singleton record and its lock.

Hostile files (truncated, huge, binary, symlinked, wrong mode, unknown version, misnamed, FIFOs) must come
back as entries with a ``problem``: never trusted, never deleted by a read, never an exception.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.core.constants import DASHBOARD_PORT_RANGE, MAX_RECORD_BYTES
from synclease.core.errors import EXIT_PROBLEM, SyncleaseError
from synclease.core.lease import LeaseEntry, LeaseRecord, SingletonRecord, encode_lease, encode_singleton
from synclease.core.record import replace

T0 = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
IID = "store-inst-0001"
OTHER = "store-inst-0002"


# --- helpers ------------------------------------------------------------------------------------


def make_lease(instance_id: str = IID, **changes: Any) -> LeaseRecord:
    lease = LeaseRecord(
        family="sync",
        instance_id=instance_id,
        scope_id="00112233aabbccdd",
        daemon_root="/unused/in/these/tests",
        pid=31337,
        process_start_time=1_767_000_000.5,
        port=9420,
        package_version="3.2.4",
        protocol_version=1,
        acquired_at=T0,
        renewed_at=T0,
        ttl_seconds=10.0,
        state="serving",
        token=f"token-of-{instance_id}",
    )
    return replace(lease, **changes)


def make_singleton(instance_id: str = IID, generation: int = 1) -> SingletonRecord:
    return SingletonRecord(
        family="sync",
        instance_id=instance_id,
        generation=generation,
        pid=31337,
        port=9420,
        package_version="3.2.4",
        protocol_version=1,
        written_at=T0,
    )


def put(path: Path, data: bytes, mode: int = 0o600) -> Path:
    """Plant a file as a hostile or careless writer would (not atomically, any mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, mode)
    return path


def only_entry(store: LeaseStore) -> LeaseEntry:
    entries = store.list()
    assert len(entries) == 1, entries
    return entries[0]


@pytest.fixture
def root(tmp_path: Path) -> DaemonRoot:
    return DaemonRoot(tmp_path / "root").prepare()


@pytest.fixture
def store(root: DaemonRoot) -> LeaseStore:
    return LeaseStore(root)


# --- writing and reading ------------------------------------------------------------------------


def test_write_then_read(store: LeaseStore, root: DaemonRoot) -> None:
    lease = make_lease()
    store.write(lease)
    entry = store.read(IID)
    assert entry.lease == lease
    assert entry.problem is None
    assert entry.instance_id == IID
    assert entry.path == root.lease_path(IID)


def test_written_file_is_private_and_no_temp_is_left(store: LeaseStore, root: DaemonRoot) -> None:
    store.write(make_lease())
    store.write(make_lease(renewed_at=T0 + timedelta(seconds=2)))
    assert stat.S_IMODE(root.lease_path(IID).stat().st_mode) == 0o600
    assert sorted(p.name for p in root.leases_dir().iterdir()) == [f"{IID}.json"]


def test_files_on_disk_validate_against_the_schemas(store: LeaseStore, root: DaemonRoot) -> None:
    protocol = Path(__file__).resolve().parent.parent / "protocol"
    store.write(make_lease(auth_scope="team:alpha"))
    with store.singleton_lock():
        store.write_singleton(make_singleton(IID, store.next_generation()))
    for schema_name, path in [
        ("lease-v1.schema.json", root.lease_path(IID)),
        ("singleton-v1.schema.json", root.singleton_path()),
    ]:
        schema = json.loads((protocol / schema_name).read_text())
        Draft202012Validator(schema).validate(json.loads(path.read_bytes()))


def test_renewal_overwrites(store: LeaseStore) -> None:
    store.write(make_lease())
    later = make_lease(renewed_at=T0 + timedelta(seconds=2), state="draining")
    store.write(later)
    assert store.read(IID).lease == later


def test_write_replaces_a_planted_symlink_without_following_it(
    store: LeaseStore, root: DaemonRoot, tmp_path: Path
) -> None:
    victim = put(tmp_path / "victim.txt", b"do not touch\n")
    root.lease_path(IID).symlink_to(victim)
    store.write(make_lease())
    assert victim.read_bytes() == b"do not touch\n"
    assert not root.lease_path(IID).is_symlink()
    assert store.read(IID).lease == make_lease()


def test_read_missing(store: LeaseStore) -> None:
    entry = store.read(IID)
    assert entry.lease is None
    assert entry.problem == "missing"


def test_list_empty_and_unprepared_roots(store: LeaseStore, tmp_path: Path) -> None:
    assert store.list() == []
    assert LeaseStore(DaemonRoot(tmp_path / "never-created")).list() == []


def test_list_returns_every_lease_sorted(store: LeaseStore) -> None:
    for iid in (OTHER, IID, "store-inst-0000"):
        store.write(make_lease(iid))
    entries = store.list()
    assert [e.instance_id for e in entries] == ["store-inst-0000", IID, OTHER]
    assert all(e.lease is not None and e.lease.instance_id == e.instance_id for e in entries)


def test_list_skips_lock_files_and_writer_temp_files(store: LeaseStore, root: DaemonRoot) -> None:
    store.write(make_lease())
    put(root.holder_lock_path(IID), b"")
    put(root.leases_dir() / f".{IID}.json.0123456789ab.tmp", b'{"half": ')
    put(root.leases_dir() / ".hidden.json", b"{}")
    put(root.leases_dir() / "notes.txt", b"hello")
    assert [e.instance_id for e in store.list()] == [IID]


def test_list_reports_a_bad_file_name_without_reading_it(store: LeaseStore, root: DaemonRoot) -> None:
    put(root.leases_dir() / "bad name!.json", encode_lease(make_lease()))
    entry = only_entry(store)
    assert entry.problem == "bad_name"
    assert entry.lease is None


def test_family_stores_are_separate(root: DaemonRoot) -> None:
    dash = LeaseStore(root, family="dashboard")
    root.leases_dir("dashboard").mkdir(mode=0o700)
    dash.write(make_lease(family="dashboard", port=DASHBOARD_PORT_RANGE.start))
    assert LeaseStore(root).list() == []
    assert [e.instance_id for e in dash.list()] == [IID]


# --- deleting only what is provably one's own ---------------------------------------------------


def test_delete_own_removes_lease_and_holder_lock(store: LeaseStore, root: DaemonRoot) -> None:
    lease = make_lease()
    store.write(lease)
    put(root.holder_lock_path(IID), b"")
    assert store.delete_own(lease) is True
    assert not root.lease_path(IID).exists()
    assert not root.holder_lock_path(IID).exists()
    assert store.read(IID).problem == "missing"


@pytest.mark.parametrize(
    "on_disk",
    [
        pytest.param({"token": "someone-elses-token"}, id="other-token"),
        pytest.param({"pid": 4242}, id="other-pid"),
        pytest.param({"token": "someone-elses-token", "pid": 4242}, id="other-both"),
    ],
)
def test_delete_own_refuses_a_lease_that_is_no_longer_ours(
    store: LeaseStore, root: DaemonRoot, on_disk: dict[str, Any]
) -> None:
    mine = make_lease()
    theirs = replace(mine, **on_disk)
    store.write(theirs)
    assert store.delete_own(mine) is False
    assert store.read(IID).lease == theirs


def test_delete_own_of_a_missing_lease_is_false(store: LeaseStore) -> None:
    assert store.delete_own(make_lease()) is False


def test_delete_own_never_removes_an_untrusted_file(store: LeaseStore, root: DaemonRoot) -> None:
    path = put(root.lease_path(IID), encode_lease(make_lease())[:40])
    assert store.delete_own(make_lease()) is False
    assert path.exists()


def test_delete_own_does_not_follow_a_symlink(store: LeaseStore, root: DaemonRoot, tmp_path: Path) -> None:
    target = put(tmp_path / "real.json", encode_lease(make_lease()))
    root.lease_path(IID).symlink_to(target)
    assert store.delete_own(make_lease()) is False
    assert target.exists()
    assert root.lease_path(IID).is_symlink()


def test_delete_stale_removes_the_named_file_only(store: LeaseStore, root: DaemonRoot) -> None:
    store.write(make_lease())
    store.write(make_lease(OTHER))
    entry = store.read(IID)
    assert store.delete_stale(entry) is True
    assert store.delete_stale(entry) is False
    assert [e.instance_id for e in store.list()] == [OTHER]


# --- hostile and careless files -----------------------------------------------------------------


def _truncated(root: DaemonRoot, tmp_path: Path) -> Path:
    data = encode_lease(make_lease())
    return put(root.lease_path(IID), data[: len(data) // 2])


def _ten_megabytes(root: DaemonRoot, tmp_path: Path) -> Path:
    data = encode_lease(make_lease()).rstrip()[:-1] + b', "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    return put(root.lease_path(IID), data)


def _binary(root: DaemonRoot, tmp_path: Path) -> Path:
    return put(root.lease_path(IID), bytes(range(256)) * 16)


def _nul_bytes(root: DaemonRoot, tmp_path: Path) -> Path:
    return put(root.lease_path(IID), b"\x00" * 4096)


def _empty(root: DaemonRoot, tmp_path: Path) -> Path:
    return put(root.lease_path(IID), b"")


def _symlink(root: DaemonRoot, tmp_path: Path) -> Path:
    target = put(tmp_path / f"{IID}.json", encode_lease(make_lease()))
    root.lease_path(IID).symlink_to(target)
    return root.lease_path(IID)


def _dangling_symlink(root: DaemonRoot, tmp_path: Path) -> Path:
    root.lease_path(IID).symlink_to(tmp_path / "nowhere.json")
    return root.lease_path(IID)


def _world_readable(root: DaemonRoot, tmp_path: Path) -> Path:
    return put(root.lease_path(IID), encode_lease(make_lease()), mode=0o644)


def _group_writable(root: DaemonRoot, tmp_path: Path) -> Path:
    return put(root.lease_path(IID), encode_lease(make_lease()), mode=0o620)


def _unknown_version(root: DaemonRoot, tmp_path: Path) -> Path:
    doc = json.loads(encode_lease(make_lease()))
    doc["schema_version"] = 2
    doc["something_new"] = {"v2": True}
    return put(root.lease_path(IID), json.dumps(doc).encode())


def _not_a_lease(root: DaemonRoot, tmp_path: Path) -> Path:
    return put(root.lease_path(IID), encode_singleton(make_singleton()))


def _name_mismatch(root: DaemonRoot, tmp_path: Path) -> Path:
    return put(root.lease_path(IID), encode_lease(make_lease(OTHER)))


def _family_mismatch(root: DaemonRoot, tmp_path: Path) -> Path:
    dash = make_lease(family="dashboard", port=DASHBOARD_PORT_RANGE.start)
    return put(root.lease_path(IID), encode_lease(dash))


def _fifo(root: DaemonRoot, tmp_path: Path) -> Path:
    os.mkfifo(root.lease_path(IID), 0o600)
    return root.lease_path(IID)


def _directory(root: DaemonRoot, tmp_path: Path) -> Path:
    root.lease_path(IID).mkdir(mode=0o700)
    return root.lease_path(IID)


HOSTILE: dict[str, tuple[Callable[[DaemonRoot, Path], Path], str]] = {
    "truncated": (_truncated, "not_json"),
    "ten-megabytes": (_ten_megabytes, "too_large"),
    "binary": (_binary, "not_utf8"),
    "nul-bytes": (_nul_bytes, "not_json"),
    "empty": (_empty, "empty"),
    "symlink": (_symlink, "symlink"),
    "dangling-symlink": (_dangling_symlink, "symlink"),
    "mode-0644": (_world_readable, "insecure_mode"),
    "mode-0620": (_group_writable, "insecure_mode"),
    "unknown-version": (_unknown_version, "unknown_version"),
    "singleton-in-leases": (_not_a_lease, "unknown_schema"),
    "name-mismatch": (_name_mismatch, "name_mismatch"),
    "family-mismatch": (_family_mismatch, "name_mismatch"),
    "fifo": (_fifo, "not_regular_file"),
    "directory": (_directory, "not_regular_file"),
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_lease_is_reported_never_trusted(
    kind: str, store: LeaseStore, root: DaemonRoot, tmp_path: Path
) -> None:
    plant, reason = HOSTILE[kind]
    path = plant(root, tmp_path)
    entry = store.read(IID)
    assert (entry.problem, entry.lease) == (reason, None)
    listed = only_entry(store)
    assert (listed.problem, listed.lease, listed.instance_id) == (reason, None, IID)
    assert os.path.lexists(path), "a read must never delete what it cannot trust"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_lease_is_never_deleted_as_own(
    kind: str, store: LeaseStore, root: DaemonRoot, tmp_path: Path
) -> None:
    plant, _ = HOSTILE[kind]
    path = plant(root, tmp_path)
    assert store.delete_own(make_lease()) is False
    assert os.path.lexists(path)


@pytest.mark.timeout(30)
def test_list_survives_every_hostile_file_at_once(
    store: LeaseStore, root: DaemonRoot, tmp_path: Path
) -> None:
    expected: dict[str, str | None] = {}
    for number, kind in enumerate(sorted(HOSTILE)):
        plant, reason = HOSTILE[kind]
        iid = f"hostile-{number:04d}"
        sandbox = tmp_path / kind
        sandbox.mkdir()
        plant(root, sandbox).rename(root.lease_path(iid))
        expected[iid] = reason
    store.write(make_lease())
    expected[IID] = None
    entries = {e.instance_id: e for e in store.list()}
    assert {iid: e.problem for iid, e in entries.items()} == expected
    trusted = [e for e in entries.values() if e.lease is not None]
    assert [e.instance_id for e in trusted] == [IID]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant a file owned by another uid")
def test_foreign_owned_lease_is_reported(store: LeaseStore, root: DaemonRoot) -> None:
    path = put(root.lease_path(IID), encode_lease(make_lease()))
    os.chown(path, 65534, 65534)
    entry = store.read(IID)
    assert (entry.problem, entry.lease) == ("foreign_owner", None)
    assert "65534" in entry.detail


def test_read_of_unreadable_file_reports_instead_of_raising(store: LeaseStore, root: DaemonRoot) -> None:
    import socket

    # A unix socket cannot be opened as a file at all (ENXIO): the store says so and moves on.
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(root.lease_path(IID)))
        entry = store.read(IID)
        assert entry.lease is None
        assert entry.problem in {"unreadable", "not_regular_file"}
        assert only_entry(store).lease is None
    finally:
        server.close()


# --- the singleton record -----------------------------------------------------------------------


def test_singleton_missing(store: LeaseStore) -> None:
    entry = store.read_singleton()
    assert (entry.record, entry.problem) == (None, "missing")
    assert store.next_generation() >= 1


def test_singleton_write_read_and_generations(store: LeaseStore, root: DaemonRoot) -> None:
    with store.singleton_lock():
        first = make_singleton(IID, store.next_generation())
        store.write_singleton(first)
    assert store.read_singleton().record == first
    assert first.generation >= 1
    assert stat.S_IMODE(root.singleton_path().stat().st_mode) == 0o600
    with store.singleton_lock():
        second = make_singleton(OTHER, store.next_generation())
        store.write_singleton(second)
    assert second.generation > first.generation
    assert store.read_singleton().record == second
    assert store.next_generation() > second.generation


def test_generations_keep_rising_after_the_record_is_cleared(store: LeaseStore) -> None:
    with store.singleton_lock():
        high = make_singleton(IID, store.next_generation() + 1000)
        store.write_singleton(high)
        assert store.clear_singleton_if(IID)
        # A cleared (or unreadable) record must not restart generations below what a live daemon saw.
        assert store.next_generation() >= high.generation - 1000
        store.write_singleton(make_singleton(OTHER, 10**15))
        assert store.next_generation() == 10**15 + 1


def test_clear_singleton_only_if_it_still_names_the_instance(store: LeaseStore, root: DaemonRoot) -> None:
    with store.singleton_lock():
        store.write_singleton(make_singleton(OTHER, 4))
        assert store.clear_singleton_if(IID) is False
        assert store.read_singleton().record == make_singleton(OTHER, 4)
        assert store.clear_singleton_if(OTHER) is True
        assert store.clear_singleton_if(OTHER) is False
    assert store.read_singleton().problem == "missing"


@pytest.mark.parametrize(
    ("plant", "reason"),
    [
        pytest.param(lambda p: put(p, b'{"schema": "synclease.singleton", '), "not_json", id="truncated"),
        pytest.param(lambda p: put(p, b"\xfe" * (MAX_RECORD_BYTES + 10)), "too_large", id="huge"),
        pytest.param(lambda p: put(p, encode_singleton(make_singleton()), 0o666), "insecure_mode", id="0666"),
        pytest.param(lambda p: put(p, encode_lease(make_lease())), "unknown_schema", id="a-lease"),
        pytest.param(lambda p: os.mkfifo(p, 0o600), "not_regular_file", id="fifo"),
    ],
)
@pytest.mark.timeout(20)
def test_hostile_singleton_is_reported_and_not_cleared(
    store: LeaseStore, root: DaemonRoot, plant: Callable[[Path], object], reason: str
) -> None:
    path = root.singleton_path()
    plant(path)
    assert store.read_singleton().problem == reason
    assert store.read_singleton().record is None
    with store.singleton_lock():
        assert store.clear_singleton_if(IID) is False
    assert os.path.lexists(path)


def test_symlinked_singleton_is_not_trusted(store: LeaseStore, root: DaemonRoot, tmp_path: Path) -> None:
    target = put(tmp_path / "elsewhere.json", encode_singleton(make_singleton()))
    root.singleton_path().symlink_to(target)
    entry = store.read_singleton()
    assert (entry.record, entry.problem) == (None, "symlink")


def test_unknown_singleton_version_is_reported(store: LeaseStore, root: DaemonRoot) -> None:
    doc = json.loads(encode_singleton(make_singleton()))
    doc["schema_version"] = 9
    put(root.singleton_path(), json.dumps(doc).encode())
    assert store.read_singleton().problem == "unknown_version"


# --- the singleton lock -------------------------------------------------------------------------


def test_singleton_lock_excludes_a_second_holder_in_process(store: LeaseStore, root: DaemonRoot) -> None:
    with store.singleton_lock():
        with pytest.raises(SyncleaseError) as info, LeaseStore(root).singleton_lock(timeout=0.05):
            pytest.fail("a second holder got the singleton lock")
        assert info.value.exit_code == EXIT_PROBLEM
        assert "busy" in info.value.message
        assert info.value.hint
    with store.singleton_lock(timeout=0.05):
        pass  # released on exit: a later caller gets it


def test_singleton_lock_file_is_private(store: LeaseStore, root: DaemonRoot) -> None:
    with store.singleton_lock():
        assert stat.S_IMODE(root.singleton_lock_path().stat().st_mode) == 0o600


def test_singleton_lock_is_released_when_the_body_raises(store: LeaseStore) -> None:
    with pytest.raises(RuntimeError), store.singleton_lock():
        raise RuntimeError("boom")
    with store.singleton_lock(timeout=0.05):
        pass


LOCK_HOLDER = """
import sys
from pathlib import Path
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot

with LeaseStore(DaemonRoot(Path(sys.argv[1]))).singleton_lock(timeout=10):
    print("ready", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


@pytest.fixture
def lock_holder(root: DaemonRoot) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(root.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@pytest.mark.timeout(60)
def test_singleton_lock_excludes_another_process(
    store: LeaseStore, lock_holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(SyncleaseError, match="busy"), store.singleton_lock(timeout=0.1):
        pytest.fail("got the lock while another process holds it")
    assert lock_holder.stdin is not None and lock_holder.stdout is not None
    lock_holder.stdin.write("go\n")
    lock_holder.stdin.flush()
    assert lock_holder.stdout.readline().strip() == "released"
    with store.singleton_lock(timeout=10):
        pass


@pytest.mark.timeout(60)
def test_singleton_lock_is_freed_when_its_holder_dies(
    store: LeaseStore, lock_holder: subprocess.Popen[str]
) -> None:
    lock_holder.kill()
    lock_holder.wait(timeout=30)
    with store.singleton_lock(timeout=10):
        pass
