"""The daemon root: where it is, how it is created, which roots are refused, and its scope id."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import platformdirs
import pytest

from synclease.adapters.root import DaemonRoot, locate, open_root, scope_id_for
from synclease.core.errors import EXIT_USAGE, BadInputError, RootError


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- locating -----------------------------------------------------------------------------------


def test_synclease_home_is_used(tmp_path: Path) -> None:
    root = locate({"SYNCLEASE_HOME": str(tmp_path / "home")})
    assert root.path == (tmp_path / "home").resolve()


def test_locate_does_not_create_anything(tmp_path: Path) -> None:
    locate({"SYNCLEASE_HOME": str(tmp_path / "home")})
    assert not (tmp_path / "home").exists()


def test_synclease_home_is_stripped(tmp_path: Path) -> None:
    root = locate({"SYNCLEASE_HOME": f"  {tmp_path / 'home'}\n"})
    assert root.path == (tmp_path / "home").resolve()


def test_synclease_home_expands_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert locate({"SYNCLEASE_HOME": "~/state"}).path == (tmp_path / "state").resolve()


@pytest.mark.parametrize("env", [{}, {"SYNCLEASE_HOME": ""}, {"SYNCLEASE_HOME": "   "}])
def test_default_is_the_platform_state_dir_without_a_version(env: dict[str, str]) -> None:
    root = locate(env)
    assert root.path == Path(platformdirs.user_state_dir("synclease")).resolve()
    assert root.path.name == "synclease"


@pytest.mark.parametrize("raw", ["relative/dir", "./here", "state"])
def test_relative_synclease_home_is_refused(raw: str) -> None:
    with pytest.raises(RootError) as info:
        locate({"SYNCLEASE_HOME": raw})
    assert info.value.exit_code == EXIT_USAGE
    assert "absolute" in info.value.message
    assert info.value.hint


def test_symlinked_synclease_home_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(RootError, match="symlink"):
        locate({"SYNCLEASE_HOME": str(link)})


def test_symlinked_parents_are_resolved(tmp_path: Path) -> None:
    real_parent = tmp_path / "real-parent"
    real_parent.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(real_parent)
    via_alias = locate({"SYNCLEASE_HOME": str(alias / "root")})
    direct = locate({"SYNCLEASE_HOME": str(real_parent / "root")})
    assert via_alias.path == direct.path == (real_parent / "root").resolve()
    assert via_alias.scope_id == direct.scope_id


def test_open_root_locates_and_prepares(tmp_path: Path) -> None:
    root = open_root({"SYNCLEASE_HOME": str(tmp_path / "home")})
    assert root.path.is_dir()
    assert mode_of(root.path) == 0o700


# --- preparing ----------------------------------------------------------------------------------


def test_prepare_creates_root_and_subdirs_0700(tmp_path: Path) -> None:
    root = DaemonRoot(tmp_path / "deep" / "root").prepare()
    for directory in (root.path, root.leases_dir(), root.log_dir, root.queue_dir, root.ledger_dir):
        assert directory.is_dir()
        assert mode_of(directory) == 0o700, directory


def test_prepare_creates_0700_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        root = DaemonRoot(tmp_path / "root").prepare()
    finally:
        os.umask(old)
    assert mode_of(root.path) == 0o700
    assert mode_of(root.leases_dir()) == 0o700


def test_prepare_is_idempotent(tmp_path: Path) -> None:
    root = DaemonRoot(tmp_path / "root")
    assert root.prepare() is root
    (root.leases_dir() / "keep.json").write_text("{}")
    root.prepare()
    assert (root.leases_dir() / "keep.json").exists()


def test_existing_private_root_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir(mode=0o700)
    DaemonRoot(tmp_path / "root").prepare()


def test_existing_root_readable_by_others_but_not_writable_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "root"
    path.mkdir()
    path.chmod(0o755)
    DaemonRoot(path).prepare()
    assert mode_of(path) == 0o755  # prepare refuses unsafe roots; it does not silently chmod them


@pytest.mark.parametrize("mode", [0o770, 0o720, 0o707, 0o702, 0o777])
def test_group_or_world_writable_root_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "root"
    path.mkdir()
    path.chmod(mode)
    with pytest.raises(RootError, match="writable") as info:
        DaemonRoot(path).prepare()
    assert info.value.exit_code == EXIT_USAGE
    assert "chmod 700" in (info.value.hint or "")


def test_writable_subdirectory_is_refused(tmp_path: Path) -> None:
    root = DaemonRoot(tmp_path / "root").prepare()
    root.leases_dir().chmod(0o777)
    with pytest.raises(RootError, match="writable"):
        root.prepare()


def test_symlinked_root_is_refused_by_prepare(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(RootError, match="symlink"):
        DaemonRoot(tmp_path / "link").prepare()


def test_symlinked_leases_dir_is_refused(tmp_path: Path) -> None:
    root = DaemonRoot(tmp_path / "root").prepare()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    root.leases_dir().rmdir()
    root.leases_dir().symlink_to(elsewhere)
    with pytest.raises(RootError, match="symlink"):
        root.prepare()


def test_a_file_where_the_root_should_be_is_refused(tmp_path: Path) -> None:
    (tmp_path / "root").write_text("not a directory")
    with pytest.raises(RootError):
        DaemonRoot(tmp_path / "root").prepare()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory owned by another uid")
def test_root_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "root"
    path.mkdir(mode=0o700)
    os.chown(path, 65534, 65534)
    with pytest.raises(RootError, match="owned by uid 65534"):
        DaemonRoot(path).prepare()


def test_root_error_is_a_one_line_bad_input() -> None:
    error = RootError("daemon root /x is a symlink", hint="point SYNCLEASE_HOME at a real directory")
    assert isinstance(error, BadInputError)
    assert error.exit_code == EXIT_USAGE
    assert "\n" not in error.one_line()
    assert error.one_line() == "daemon root /x is a symlink: point SYNCLEASE_HOME at a real directory"


# --- layout and scope ---------------------------------------------------------------------------


def test_layout_inside_the_root(tmp_path: Path) -> None:
    root = DaemonRoot(tmp_path)
    assert root.lease_path("abcdefgh") == tmp_path / "leases" / "sync" / "abcdefgh.json"
    assert root.holder_lock_path("abcdefgh") == tmp_path / "leases" / "sync" / "abcdefgh.lock"
    assert root.singleton_path() == tmp_path / "sync.singleton.json"
    assert root.singleton_lock_path() == tmp_path / "sync.singleton.lock"
    assert root.leases_dir("dashboard") == tmp_path / "leases" / "dashboard"


def test_scope_id_is_a_short_digest_of_the_resolved_root(tmp_path: Path) -> None:
    root = locate({"SYNCLEASE_HOME": str(tmp_path / "root")})
    expected = hashlib.sha256(str(root.path).encode()).hexdigest()[:16]
    assert root.scope_id == expected == scope_id_for(root.path)
    assert len(root.scope_id) == 16
    int(root.scope_id, 16)


def test_scope_id_is_stable(tmp_path: Path) -> None:
    env = {"SYNCLEASE_HOME": str(tmp_path / "root")}
    first = locate(env).scope_id
    open_root(env)
    assert locate(env).scope_id == first
    assert DaemonRoot(tmp_path.resolve() / "root").scope_id == first


def test_two_roots_are_two_scopes(tmp_path: Path) -> None:
    one = locate({"SYNCLEASE_HOME": str(tmp_path / "home-a" / "synclease")})
    two = locate({"SYNCLEASE_HOME": str(tmp_path / "home-b" / "synclease")})
    assert one.scope_id != two.scope_id
