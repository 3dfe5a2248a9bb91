"""Reading another root read-only (issue 20): a huge, hostile, half-written or unsafe root gives a
clear ``problem``, never an exception, and the read creates and changes nothing there."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.other_root import ledger_writable, read_root
from synclease.adapters.root import DaemonRoot, scope_id_for
from synclease.core.constants import MAX_RECORD_BYTES
from synclease.core.lease import SingletonRecord
from tests.test_classify import make_lease

IID = "inst-stale-0001"


def make_root(tmp_path: Path) -> Path:
    root = (tmp_path / "theirs").resolve()
    store = LeaseStore(DaemonRoot(root).prepare())
    store.write(make_lease(daemon_root=str(root), scope_id=scope_id_for(root)))
    now = datetime.now(UTC)
    store.write_singleton(SingletonRecord("sync", IID, 1, 4242, 9407, "3.2.4", 1, now))
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.lstat().st_mode, p.lstat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_a_sound_root_is_read_and_left_exactly_as_it_was(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    before = snapshot(root)
    view = read_root(str(root), [IID, "inst-nobody-0002", "../../etc/passwd"])
    assert view.problem is None and view.scope_id == scope_id_for(root)
    assert view.singleton is not None and view.singleton.instance_id == IID
    assert [entry.instance_id for entry in view.leases] == [IID]  # missing and bad names left out
    assert snapshot(root) == before
    assert not (root / "sync.singleton.lock").exists()


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (lambda root: os.chmod(root, 0o770), "insecure_mode"),
        (
            lambda root: (root / "sync.singleton.json").write_bytes(b'{"schema": "synclease.singl'),
            "singleton:",
        ),
        (lambda root: os.chmod(root / "sync.singleton.json", 0o644), "singleton:insecure_mode"),
        (
            lambda root: (root / "sync.singleton.json").write_bytes(b" " * (MAX_RECORD_BYTES + 1)),
            "singleton:too_large",
        ),
        (lambda root: os.chmod(root / "leases" / "sync" / f"{IID}.json", 0o640), "lease:insecure_mode"),
        (lambda root: os.chmod(root / "leases", 0o777), "leases:insecure_mode"),
    ],
)
def test_an_unsafe_or_half_written_root_says_why(tmp_path: Path, spoil: object, problem: str) -> None:
    root = make_root(tmp_path)
    spoil(root)  # type: ignore[operator]
    view = read_root(str(root), [IID])
    assert view.problem is not None and view.problem.startswith(problem), view.problem
    assert view.singleton is None and view.leases == ()


def test_a_symlinked_missing_or_relative_root_is_refused(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(root)
    assert read_root(str(link), [IID]).problem == "symlink"
    parent_link = tmp_path / "parent-link"
    parent_link.symlink_to(tmp_path)
    assert read_root(str(parent_link / "theirs"), [IID]).problem == "symlink"  # a link above the root
    assert read_root(str(tmp_path / "nowhere"), [IID]).problem == "missing"
    assert read_root("relative/root", [IID]).problem == "not_absolute"
    assert read_root(str(root) + "/../theirs", [IID]).problem == "not_absolute"
    assert not (tmp_path / "nowhere").exists()


def test_its_ledger_is_written_only_when_its_directory_is_there_and_private(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    assert ledger_writable(str(root))
    os.rmdir(root / "ledger")
    assert not ledger_writable(str(root)) and not (root / "ledger").exists()
