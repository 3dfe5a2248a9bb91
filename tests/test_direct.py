"""Direct dispatch (ADR 0021): a line of a command's words and its switches runs without typer, and makes
exactly the call typer's tree would make; every other line is typer's."""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from synclease.cli import direct, tree
from synclease.cli.direct import Direct

Call = dict[str, Any]


def _lines(command: Direct) -> list[list[str]]:
    """Every combination of the command's switches, each in two orders."""
    lines = []
    for size in range(len(command.switches) + 1):
        for chosen in itertools.combinations(command.switches, size):
            flags = [switch.flag for switch in chosen]
            lines.append([*command.words, *flags])
            if size > 1:
                lines.append([*command.words, *reversed(flags)])
    return lines


def _recording(monkeypatch: pytest.MonkeyPatch, command: Direct) -> list[Call]:
    """Replace the command's ``run`` with one that records its arguments, defaults filled in."""
    module = importlib.import_module(command.module)
    signature = inspect.signature(module.run)
    calls: list[Call] = []

    def record(*args: object, **kwargs: object) -> int:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        calls.append(dict(bound.arguments))
        return 0

    monkeypatch.setattr(module, "run", record)
    return calls


@pytest.mark.parametrize("command", direct.COMMANDS, ids=lambda c: " ".join(c.words))
def test_both_ways_make_the_same_call_for_every_combination(
    command: Direct, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _recording(monkeypatch, command)
    for line in _lines(command):
        run = direct.call(line, {})
        assert run is not None, line
        assert run() == 0
        assert tree.dispatch(line) == 0
        by_direct, by_typer = calls[-2:]
        assert by_direct == by_typer, line
        given = {switch.keyword for switch in command.switches if switch.flag in line}
        assert {key for key, value in by_direct.items() if value is True} == given


def test_every_direct_switch_is_a_flag_of_the_command_in_the_tree() -> None:
    from synclease.cli import commands

    groups = {"sync": commands.sync_app, "auth": commands.auth_app}
    for command in direct.COMMANDS:
        group, name = command.words
        (info,) = [c for c in groups[group].registered_commands if c.name == name]
        assert info.callback is not None
        defaults = [p.default for p in inspect.signature(info.callback).parameters.values()]
        declared = {(d.param_decls, d.default, d.help) for d in defaults if hasattr(d, "param_decls")}
        for switch in command.switches:
            assert ((switch.flag,), False, switch.help) in declared, (command.words, switch.flag)


@pytest.mark.parametrize(
    "line",
    [
        [],
        ["--help"],
        ["--version"],
        ["auth"],
        ["auth", "doctor", "--help"],
        ["auth", "doctor", "--json=1"],
        ["auth", "doctor", "--jso"],
        ["auth", "doctor", "--json", "--json"],
        ["auth", "doctor", "--format", "json"],
        ["auth", "doctor", "--", "--json"],
        ["auth", "doctor", "extra"],
        ["--version", "auth", "doctor"],
        ["sync", "history", "--json"],
        ["sync", "start", "--reset"],
        ["explain", "9401"],
    ],
    ids=lambda line: " ".join(line) or "bare",
)
def test_every_other_line_is_typers(line: list[str]) -> None:
    assert direct.call(line, {}) is None


def test_completion_is_typers() -> None:
    assert direct.call(["auth", "doctor"], {direct.COMPLETE_VAR: "bash_complete"}) is None


def _loaded(args: list[str], home: Path) -> tuple[int, set[str]]:
    """Run the CLI's ``main`` in a fresh interpreter; its exit code and the top-level packages loaded."""
    script = (
        "import json, sys\n"
        "from synclease.cli.main import main\n"
        f"code = main({args!r})\n"
        "sys.stdout.flush()\n"
        "sys.stderr.write(json.dumps([code, sorted({m.split('.')[0] for m in sys.modules})]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={"SYNCLEASE_HOME": str(home), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    code, loaded = json.loads(proc.stderr.splitlines()[-1])
    return code, set(loaded)


def test_a_direct_line_loads_no_typer(tmp_path: Path) -> None:
    code, loaded = _loaded(["auth", "doctor", "--json"], tmp_path / "root")
    assert code == 0
    assert not loaded & {"typer", "click", "pydantic", "rich"}
    # nor what the read-only doctor never runs (ADR 0012: records, not dataclasses)
    assert not loaded & {"dataclasses", "inspect", "subprocess", "uuid", "psutil", "sqlite3"}


def test_a_line_with_a_value_goes_through_typer(tmp_path: Path) -> None:
    code, loaded = _loaded(["auth", "doctor", "--format", "json"], tmp_path / "root")
    assert code == 0
    assert "typer" in loaded


def test_a_direct_command_still_goes_through_the_boundary(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from synclease.cli import auth_status
    from synclease.cli.main import main
    from synclease.core.errors import EXIT_USAGE, BadInputError

    monkeypatch.setenv("SYNCLEASE_HOME", str(tmp_path / "root"))

    def refuse(**_: bool) -> int:
        raise BadInputError("no", hint="yes")

    run: Callable[..., int] = refuse
    monkeypatch.setattr(auth_status, "run", run)
    assert main(["auth", "status", "--json"]) == EXIT_USAGE
    assert capsys.readouterr().err == "synclease: error: no: yes\n"


@pytest.mark.parametrize(
    "line", [["auth", "status", "--json"], ["auth", "status", "--json", "--json"]], ids=["direct", "typer"]
)
def test_end_of_input_at_a_prompt_is_an_interrupt_both_ways(
    line: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from synclease.cli import auth_status
    from synclease.cli.main import main
    from synclease.core.errors import EXIT_INTERRUPTED

    monkeypatch.setenv("SYNCLEASE_HOME", str(tmp_path / "root"))

    def eof(**_: bool) -> int:
        raise EOFError

    run: Callable[..., int] = eof
    monkeypatch.setattr(auth_status, "run", run)
    assert (direct.call(line, {}) is None) == (line.count("--json") > 1)
    assert main(line) == EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip() == "synclease: interrupted"


@pytest.mark.parametrize(
    "line", [["auth", "doctor", "--json"], ["auth", "doctor", "--json", "--json"]], ids=["direct", "typer"]
)
def test_a_reader_gone_before_the_output_is_exit_1_quietly_both_ways(line: list[str], tmp_path: Path) -> None:
    """A real broken pipe: stdout is a pipe whose read end is closed before the command starts."""
    home = tmp_path / "root"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "synclease", *line],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env={**os.environ, "SYNCLEASE_HOME": str(home)},
            check=False,
        )
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (1, "")  # the doctor exits 0 on an empty root otherwise
    assert not list(home.glob("logs/crash-*"))
