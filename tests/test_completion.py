"""Shell completion, driven through typer's own protocol: the shell calls ``synclease`` back with
``_SYNCLEASE_COMPLETE`` set and the words typed so far (``COMP_WORDS``/``COMP_CWORD`` for bash,
``_TYPER_COMPLETE_ARGS`` for zsh and fish). Whole processes, as a shell runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _complete(shell: str, words: str, tmp_path: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCLEASE_", "_SYNCLEASE", "_TYPER"))}
    env.update(_SYNCLEASE_COMPLETE=f"complete_{shell}", SYNCLEASE_HOME=str(tmp_path / "root"))
    if shell == "bash":
        env.update(COMP_WORDS=words, COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ") else 1)))
    else:
        env.update(_TYPER_COMPLETE_ARGS=words, _TYPER_COMPLETE_FISH_ACTION="get-args")
    proc = subprocess.run(
        [sys.executable, "-m", "synclease"], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "root").exists()  # completing creates nothing
    return proc.stdout.split()


def test_bash_completes_a_group(tmp_path: Path) -> None:
    assert _complete("bash", "synclease sy", tmp_path) == ["sync"]


def test_bash_completes_the_doctor_options(tmp_path: Path) -> None:
    assert set(_complete("bash", "synclease auth doctor --", tmp_path)) == {
        "--json",
        "--reset",
        "--force",
        "--format",
        "--output",
        "--family",
        "--help",
    }


def test_bash_completes_the_doctor_format_values(tmp_path: Path) -> None:
    assert set(_complete("bash", "synclease auth doctor --format ", tmp_path)) == {
        "text",
        "json",
        "openmetrics",
    }


def test_bash_lists_every_sync_subcommand(tmp_path: Path) -> None:
    found = _complete("bash", "synclease sync ", tmp_path)
    assert found == ["run", "start", "status", "stop", "push", "dead-letter", "move-aside", "history"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_complete_with_help_text(shell: str, tmp_path: Path) -> None:
    text = " ".join(_complete(shell, "synclease sync st", tmp_path))
    for name in ("start", "status", "stop"):
        assert name in text
    assert "healthy" in text  # the command's help rides along


#: typer detects the user's shell from the process tree; this (typer's own test switch) makes
#: ``--show-completion``/``--install-completion`` take the shell as a value instead.
NAMED_SHELL = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_a_script_for_each_shell(shell: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "synclease", "--show-completion", shell],
        env=NAMED_SHELL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"complete_{shell}" in proc.stdout and "_SYNCLEASE_COMPLETE" in proc.stdout


def test_install_completion_writes_to_the_users_shell_files(tmp_path: Path) -> None:
    env = {**NAMED_SHELL, "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "synclease", "--install-completion", "bash"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    script = tmp_path / ".bash_completions" / "synclease.sh"
    assert "_SYNCLEASE_COMPLETE=complete_bash" in script.read_text()
    assert str(script) in (tmp_path / ".bashrc").read_text()
