"""Setting an unusable queue database aside: the database and its companions move together, nothing is
replaced or deleted, a symlink is moved (not followed), and only a provably unusable queue of this
root is ever moved."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synclease.adapters.queue import EventQueue, queue_path
from synclease.adapters.root import DaemonRoot
from synclease.adapters.set_aside import set_aside
from synclease.core.errors import BadInputError, SyncleaseError
from synclease.services.queue_aside import COMPANIONS, move_aside
from tests.clocks import FakeClock

GARBAGE = b"not a database" * 100


@pytest.fixture
def root(tmp_path: Path) -> DaemonRoot:
    return DaemonRoot(tmp_path / "root").prepare()


def write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data)
    os.close(fd)


def test_the_database_and_its_companions_move_together(tmp_path: Path) -> None:
    db = tmp_path / "q.sqlite3"
    for suffix, data in (("", b"main"), ("-wal", b"wal"), ("-shm", b"shm")):
        write(db.with_name(db.name + suffix), data)
    moved = set_aside(db, "20300101T000000Z", COMPANIONS)
    base = tmp_path / "q.sqlite3.unusable-20300101T000000Z"
    assert moved == [
        (tmp_path / "q.sqlite3-wal", tmp_path / f"{base.name}-wal"),
        (tmp_path / "q.sqlite3-shm", tmp_path / f"{base.name}-shm"),
        (db, base),  # the database last
    ]
    assert base.read_bytes() == b"main" and (tmp_path / f"{base.name}-wal").read_bytes() == b"wal"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(dst.name for _, dst in moved)


def test_a_taken_name_is_never_replaced(tmp_path: Path) -> None:
    db = tmp_path / "q.sqlite3"
    write(db, b"second")
    write(tmp_path / "q.sqlite3.unusable-S", b"first")
    write(tmp_path / "q.sqlite3.unusable-S-1-shm", b"someone's")
    moved = set_aside(db, "S", COMPANIONS)
    assert moved == [(db, tmp_path / "q.sqlite3.unusable-S-2")]
    assert (tmp_path / "q.sqlite3.unusable-S").read_bytes() == b"first"
    assert (tmp_path / "q.sqlite3.unusable-S-2").read_bytes() == b"second"


def test_a_symlink_is_moved_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    db = tmp_path / "q.sqlite3"
    os.symlink(target, db)
    [(_, dst)] = set_aside(db, "S", COMPANIONS)
    assert dst.is_symlink() and os.readlink(dst) == str(target) and target.read_bytes() == b"keep"


def test_only_a_provably_unusable_queue_of_this_root_is_moved(root: DaemonRoot, tmp_path: Path) -> None:
    clock = FakeClock()
    local = queue_path(root, None)
    EventQueue(local, clock).close()
    with pytest.raises(SyncleaseError, match="is usable"):
        move_aside(root, str(local), clock)
    assert local.exists()
    elsewhere = tmp_path / local.name
    write(elsewhere, GARBAGE)
    for given in (str(elsewhere), str(root.queue_dir / "notes.txt"), str(root.path / local.name)):
        with pytest.raises(BadInputError, match="not a queue database of this root"):
            move_aside(root, given, clock)
    with pytest.raises(BadInputError, match="no queue database"):
        move_aside(root, str(root.queue_dir / ("0" * 16 + ".sqlite3")), clock)

    scoped = queue_path(root, "https://x|alice|")
    write(scoped, GARBAGE)
    result = move_aside(root, str(scoped), clock)
    assert (result.queue, result.problem) == ("scope", "not_a_queue_database")
    [(src, dst)] = result.moved
    assert src == scoped and dst.name == f"{scoped.name}.unusable-20300101T000000Z"
    assert dst.read_bytes() == GARBAGE and not scoped.exists()
