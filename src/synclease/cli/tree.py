"""typer's command tree: built for every command line that :mod:`synclease.cli.direct` leaves to it, with
only the group and subcommand the line names (or all of it for help and completion), and run."""

from __future__ import annotations

import os
import sys

import typer

from synclease.cli import typer_line
from synclease.cli.direct import COMPLETE_VAR
from synclease.core.errors import EXIT_OK

HELP = "Sync daemons that hold heartbeat leases, govern themselves, and are reaped only on proof."


def _version(value: bool) -> None:
    if value:
        from synclease.adapters import environment

        typer.echo(f"synclease {environment.package_version()}")
        raise typer.Exit(0)


def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """synclease command line."""


def words(args: list[str]) -> list[str] | None:
    """The group and subcommand the command line names, or None when the whole tree must be built:
    for ``--help`` (it lists the tree) and for completion (it offers it)."""
    if COMPLETE_VAR in os.environ or any(arg == "--help" for arg in args):
        return None
    return [arg for arg in args if not arg.startswith("-")][:2]


def build(named: list[str] | None = None) -> typer.Typer:
    """A fresh command tree: all of it, or only the group and subcommand ``named`` (typer builds the
    parameters of every registered command at each start)."""
    from synclease.cli import commands

    app = typer.Typer(
        name="synclease",
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    app.callback()(_root)
    commands.register(app, named)
    return app


def dispatch(args: list[str]) -> int:
    """Build the tree for ``args`` and run it; click's own outcomes (usage errors, --help, Ctrl-C at a
    prompt) end here."""
    app = build(words(args))
    try:
        result = app(args=args, prog_name="synclease", standalone_mode=False)
    except typer_line.ABORT:
        raise KeyboardInterrupt from None
    except typer_line.EXIT as exc:
        return typer_line.exit_code(exc)
    except typer_line.USAGE_ERROR as exc:
        problem = typer_line.usage_problem(exc)
        problem.show(file=sys.stderr)
        return problem.exit_code
    return result if isinstance(result, int) else EXIT_OK
