"""Unsupported platforms (issue 13): on Windows every entry point says so in one line and exits 2,
before anything reaches for ``os.O_NOFOLLOW`` or ``os.geteuid``.

The platform is faked in-process: ``sys.platform`` reads ``win32`` and the POSIX-only names the root's
checks use are removed from ``os``, so reaching one of them would fail the test with an AttributeError
instead of the one line.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import synclease
from synclease import UnsupportedPlatformError
from synclease.cli import main as cli_main
from synclease.core.errors import EXIT_USAGE
from synclease.daemons.dashboard import __main__ as dashboard_main
from synclease.daemons.sync import __main__ as sync_main

COMMANDS = [
    ["sync", "run"],
    ["sync", "start"],
    ["sync", "start", "--json"],
    ["sync", "status"],
    ["sync", "stop"],
    ["sync", "push"],
    ["sync", "history"],
    ["sync", "dead-letter"],
    ["sync", "move-aside", "x.db"],
    ["auth", "login", "--server", "https://example.test"],
    ["auth", "status"],
    ["auth", "logout"],
    ["auth", "doctor"],
    ["auth", "doctor", "--reset", "--force"],
    ["auth", "doctor", "--format", "openmetrics"],
    ["dashboard"],
    ["explain", "9401"],
    ["--version"],
    ["--help"],
    [],
]


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    # ``sync run`` in-process configures the "synclease" logger (its own handler, no propagation)
    # before it refuses: put it back, or a later test's caplog sees nothing (pytest 8.0, issue 23).
    logger = logging.getLogger("synclease")
    monkeypatch.setattr(logger, "handlers", list(logger.handlers))  # it edits the list in place
    monkeypatch.setattr(logger, "level", logger.level)
    monkeypatch.setattr(logger, "propagate", logger.propagate)
    monkeypatch.setenv("SYNCLEASE_HOME", str(tmp_path / "root"))
    monkeypatch.setattr(sys, "platform", "win32")
    for name in ("O_NOFOLLOW", "geteuid", "getuid", "fchmod"):
        monkeypatch.delattr(os, name, raising=False)
    return tmp_path / "root"


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_the_list_covers_every_command() -> None:
    from synclease.cli import commands

    listed = {" ".join(words[:2]) for words in COMMANDS if words and not words[0].startswith("-")}
    registered = {f"sync {c.name}" for c in commands.sync_app.registered_commands}
    registered |= {f"auth {c.name}" for c in commands.auth_app.registered_commands}
    assert registered | {"dashboard", "explain 9401"} <= listed


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a) or "bare")
def test_every_command_refuses_windows_in_one_line(
    windows: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main.main(argv) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == ""
    line = _one_line(err)
    assert line.startswith("synclease: error: synclease does not support this platform yet (win32)")
    assert "WSL" in line
    assert not windows.exists()  # nothing was created


@pytest.mark.parametrize(
    ("entry", "argv"),
    [(sync_main.main, []), (dashboard_main.main, ["--project", "/srv/project"])],
    ids=["sync", "dashboard"],
)
def test_the_daemon_entry_points_refuse_it_too(
    windows: Path, entry: Callable[[list[str]], int], argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert entry(argv) == EXIT_USAGE
    assert "does not support this platform yet" in _one_line(capsys.readouterr().err)
    assert not windows.exists()


def test_the_public_api_raises_the_error_type(windows: Path) -> None:
    for call in (synclease.ensure, synclease.survey, synclease.reset):
        with pytest.raises(UnsupportedPlatformError) as err:
            call()
        assert err.value.exit_code == EXIT_USAGE
    with pytest.raises(UnsupportedPlatformError):
        synclease.enqueue("test.event", {})
    assert not windows.exists()


@pytest.mark.parametrize("platform", ["linux", "darwin", "freebsd14"])
def test_posix_platforms_pass_the_guard(platform: str) -> None:
    from synclease.adapters.environment import check_platform

    check_platform(platform)
