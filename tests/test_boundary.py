"""The one error boundary (CLI and daemons), the shared lifecycle's signal capture, and the process
adapter's signalling variants."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from synclease.adapters import boundary, process
from synclease.adapters.boundary import MAX_CRASH_REPORTS, guarded
from synclease.cli import sync_status
from synclease.cli.main import main
from synclease.core.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, BadInputError, DaemonStartError
from synclease.daemons.lifecycle import captured_signals


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "root"
    monkeypatch.setenv("SYNCLEASE_HOME", str(root))
    return root


def crash_reports(root: Path) -> list[Path]:
    return sorted((root / "logs").glob("crash-*.txt"))


def test_an_expected_error_is_its_exit_code_and_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def bad() -> int:
        raise BadInputError("SYNCLEASE_X='y' is not a number", hint="unset it")

    assert guarded(bad) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == "synclease: error: SYNCLEASE_X='y' is not a number: unset it\n"


def test_a_start_failure_adds_the_daemon_log_tail(capsys: pytest.CaptureFixture[str]) -> None:
    def dies() -> int:
        raise DaemonStartError("the sync daemon exited with code 1", hint="see log", log_tail="boom")

    assert guarded(dies) == 1
    assert capsys.readouterr().err.endswith("--- daemon log (last lines) ---\nboom\n")


def test_ctrl_c_is_130(capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted() -> int:
        raise KeyboardInterrupt

    assert guarded(interrupted) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "synclease: interrupted\n"


def test_a_bug_is_exit_70_one_line_and_a_crash_report(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def buggy() -> int:
        raise ZeroDivisionError("a bug deep inside")

    assert guarded(buggy) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    [report] = crash_reports(home)
    assert f"crash report: {report}" in err and "ZeroDivisionError" in err
    text = report.read_text()
    assert "Traceback" in text and "a bug deep inside" in text
    assert report.stat().st_mode & 0o077 == 0


def test_the_cli_routes_an_unexpected_exception_to_the_boundary(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def explode(as_json: bool) -> int:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(sync_status, "run", explode)
    assert main(["sync", "status", "--json"]) == EXIT_INTERNAL
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and len(crash_reports(home)) == 1


def test_crash_reports_are_bounded_in_count(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "logs").mkdir(parents=True, mode=0o700)
    os.chmod(home, 0o700)
    for n in range(MAX_CRASH_REPORTS + 5):
        (home / "logs" / f"crash-20000101T0000{n:02d}Z-1.txt").write_text("old")
    assert boundary.write_crash_report(ValueError("x")) is not None
    assert len(crash_reports(home)) == MAX_CRASH_REPORTS


def test_captured_signals_count_wake_and_restore() -> None:
    class Target:
        signals = 0
        interrupted = False

        def __init__(self) -> None:
            from synclease.daemons.lifecycle import Waker

            self.waker = Waker()

    target = Target()
    before = signal.getsignal(signal.SIGTERM)
    with captured_signals(target):  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGTERM)
        target.waker.wait(5.0)  # woken by the signal through the wake-up descriptor
        assert target.signals == 1 and not target.interrupted  # SIGTERM: a request to retire
        os.kill(os.getpid(), signal.SIGINT)
        target.waker.wait(5.0)
        assert target.signals == 2 and target.interrupted  # Ctrl-C: the daemon will exit 130
    assert signal.getsignal(signal.SIGTERM) is before
    target.waker.close()


def test_signalling_variant_is_chosen_once_and_no_pidfd_selects_the_portable_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process.signaller.cache_clear()
    monkeypatch.setenv("SYNCLEASE_FAILPOINTS", "no_pidfd")
    try:
        assert process.signaller().name == "recheck"
        monkeypatch.delenv("SYNCLEASE_FAILPOINTS")
        assert process.signaller().name == "recheck"  # chosen once per process
        process.signaller.cache_clear()
        expected = "pidfd" if hasattr(os, "pidfd_open") else "recheck"
        assert process.signaller().name == expected
    finally:
        process.signaller.cache_clear()


def test_no_variant_signals_a_process_whose_check_fails() -> None:
    for variant in (process.Signaller(), process.PidfdSignaller()):
        if variant.name == "pidfd" and not hasattr(os, "pidfd_open"):
            continue
        assert variant.send(os.getpid(), "SIGTERM", lambda: False) is False  # we are still here
