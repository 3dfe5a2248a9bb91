"""The command tree: thin typer wrappers that parse options and call one module per command."""

from __future__ import annotations

import typer

sync_app = typer.Typer(help="Run and manage the sync daemon.", no_args_is_help=True)
auth_app = typer.Typer(help="Auth session and the doctor.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    if getattr(app, "_synclease_registered", False):
        return
    app.add_typer(sync_app, name="sync")
    app.add_typer(auth_app, name="auth")
    app._synclease_registered = True  # type: ignore[attr-defined]
