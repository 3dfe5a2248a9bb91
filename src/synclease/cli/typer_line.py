"""The one place that knows which typer line is installed (ADR 0017).

typer up to 0.24 builds on the ``click`` package: its ``Exit`` and ``Abort`` are click's, and a usage
error is a ``click.ClickException``. Newer typer vendors its own copy of click (``typer._click``) and
no longer depends on the package: its exceptions are that copy's, and ``Option`` lost ``click_type``.
The rest of ``cli/`` declares parameters only in ways both lines accept (plain types, ``Enum``
choices) and catches the outcomes named here.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import IO, Protocol, cast

import typer


class UsageProblem(Protocol):
    """What the dispatcher needs of click's ``ClickException`` (either copy of click)."""

    exit_code: int

    def show(self, file: IO[str] | None = None) -> None: ...


def _exceptions() -> ModuleType:
    try:  # typer that vendors click (0.25 and later)
        return importlib.import_module("typer._click.exceptions")
    except ModuleNotFoundError:  # typer 0.24 and earlier: the click package
        return importlib.import_module("click.exceptions")


_EXC = _exceptions()

#: A usage error, a bad parameter, a missing option: shown with ``show()``, exit with ``exit_code``.
USAGE_ERROR = cast(type[Exception], _EXC.ClickException)
#: Ctrl-C or EOF at a prompt.
ABORT: type[BaseException] = typer.Abort
#: ``--help``, ``--version`` and ``raise typer.Exit(n)``: carries ``exit_code``.
EXIT: type[BaseException] = typer.Exit


def usage_problem(exc: BaseException) -> UsageProblem:
    """``exc`` (caught as :data:`USAGE_ERROR`) as what it is."""
    return cast(UsageProblem, exc)


def exit_code(exc: BaseException) -> int:
    """The code an :data:`EXIT` carries."""
    code = getattr(exc, "exit_code", 0)
    return code if isinstance(code, int) else 0
