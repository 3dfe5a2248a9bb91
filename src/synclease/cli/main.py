"""Entry point: build the command tree, hand the run to the one error boundary, dispatch. Nothing else."""

from __future__ import annotations

import os
import sys

import click
import typer

from synclease.adapters.boundary import guarded
from synclease.core.errors import EXIT_OK

app = typer.Typer(
    name="synclease",
    help="Sync daemons that hold heartbeat leases, govern themselves, and are reaped only on proof.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from synclease.adapters import environment

        typer.echo(f"synclease {environment.package_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """synclease command line."""


def _register(argv: list[str] | None = None) -> None:
    from synclease.cli import commands

    args = sys.argv[1:] if argv is None else argv
    first = next((arg for arg in args if not arg.startswith("-")), None)
    completing = any(name.startswith("_SYNCLEASE_COMPLETE") for name in os.environ)
    named = first if first in commands.GROUPS and not completing else None
    commands.register(app, named)


def _dispatch(argv: list[str] | None) -> int:
    """Run the command; click's own outcomes (usage errors, --help, Ctrl-C at a prompt) end here."""
    try:
        result = app(args=argv, prog_name="synclease", standalone_mode=False)
    except click.exceptions.Abort:
        raise KeyboardInterrupt from None
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show(file=sys.stderr)
        return exc.exit_code
    return result if isinstance(result, int) else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    _register(argv)
    return guarded(lambda: _dispatch(argv))
