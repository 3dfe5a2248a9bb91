"""Entry point: build the command tree and map the one error family to exit codes, here only."""

from __future__ import annotations

import sys

import click
import typer

from synclease import package_version
from synclease.cli.output import stderr_console
from synclease.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    DaemonStartError,
    SyncleaseError,
)

app = typer.Typer(
    name="synclease",
    help="Sync daemons that hold heartbeat leases, govern themselves, and are reaped only on proof.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"synclease {package_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """synclease command line."""


def _register() -> None:
    from synclease.cli import commands

    commands.register(app)


def main(argv: list[str] | None = None) -> int:
    _register()
    try:
        result = app(args=argv, prog_name="synclease", standalone_mode=False)
    except SyncleaseError as exc:
        stderr_console.print(f"synclease: error: {exc.one_line()}", markup=False)
        if isinstance(exc, DaemonStartError) and exc.log_tail:
            stderr_console.print("--- daemon log (last lines) ---\n" + exc.log_tail, markup=False)
        return exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        stderr_console.print("synclease: interrupted", markup=False)
        return EXIT_INTERRUPTED
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show(file=sys.stderr)
        return exc.exit_code
    return result if isinstance(result, int) else EXIT_OK
