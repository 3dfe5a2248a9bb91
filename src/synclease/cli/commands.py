"""The command tree: thin typer wrappers that parse options and call one module per command."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from synclease.cli import direct
from synclease.cli.direct import Switch

SYNC_HELP = "Run and manage the sync daemon."
AUTH_HELP = "Auth session and the doctor."
PROTOCOL_HELP = "Check a daemon against the lease protocol (protocol/lease-v1.md)."
sync_app = typer.Typer(help=SYNC_HELP, no_args_is_help=True)
protocol_app = typer.Typer(help=PROTOCOL_HELP, no_args_is_help=True)
auth_app = typer.Typer(help=AUTH_HELP, no_args_is_help=True)


def switch(declared: Switch) -> Any:
    """typer's option (a parameter's default) for a switch that :mod:`synclease.cli.direct` declares."""
    return typer.Option(False, declared.flag, help=declared.help)


JSON_OPTION = switch(direct.JSON)
OUTPUT_OPTION = typer.Option(
    None, "--output", help="With --format json or openmetrics: write this file atomically instead of stdout."
)


class DoctorFormat(StrEnum):
    """``auth doctor --format``: an ``Enum`` is a choice on every typer line (ADR 0017)."""

    TEXT = "text"
    JSON = "json"
    OPENMETRICS = "openmetrics"


FORMAT_OPTION = typer.Option(
    DoctorFormat.TEXT.value,  # the value, not the member: typer 0.13 hands a member to click as is
    "--format",
    help="text (default), json (as --json) or openmetrics (for Prometheus' textfile collector).",
)


@sync_app.command("run")
def sync_run(
    replace: bool = typer.Option(False, "--replace", help="Supersede a healthy singleton."),
    managed: bool = typer.Option(False, "--managed", hidden=True),
    instance_id: str | None = typer.Option(None, "--instance-id", hidden=True),
) -> int:
    """Run the sync daemon in the foreground (exit 3 if a healthy one already serves this root)."""
    from synclease.cli import sync_run as cmd

    return cmd.run(replace=replace, managed=managed, instance_id=instance_id)


@sync_app.command("start")
def sync_start(
    as_json: bool = JSON_OPTION,
    force_spawn: bool = switch(direct.FORCE_SPAWN),
) -> int:
    """Make sure one healthy sync daemon serves this root; reuse it if it does."""
    from synclease.cli import sync_start as cmd

    return cmd.run(as_json=as_json, force_spawn=force_spawn)


@sync_app.command("status")
def sync_status(as_json: bool = JSON_OPTION) -> int:
    """Show the singleton, its lease and queue (exit 1 if no healthy daemon)."""
    from synclease.cli import sync_status as cmd

    return cmd.run(as_json=as_json)


@sync_app.command("stop")
def sync_stop(as_json: bool = JSON_OPTION) -> int:
    """Stop the singleton: polite retire via its token, escalating only after re-checking identity."""
    from synclease.cli import sync_stop as cmd

    return cmd.run(as_json=as_json)


@sync_app.command("push")
def sync_push(
    source: str | None = typer.Argument(None, help="`-` to read NDJSON events from stdin."),
    event_type: str | None = typer.Option(None, "--type", help="Event type."),
    data: str | None = typer.Option(None, "--data", help="Event data as JSON."),
    as_json: bool = JSON_OPTION,
) -> int:
    """Queue events durably; with a session, make sure a daemon uploads them."""
    from synclease.cli import sync_push as cmd

    return cmd.run(source, event_type, data, as_json)


@sync_app.command("dead-letter")
def sync_dead_letter(
    as_json: bool = JSON_OPTION,
    requeue: bool = switch(direct.REQUEUE),
) -> int:
    """List the events the server refused permanently (newest first), or requeue them all."""
    from synclease.cli import sync_dead_letter as cmd

    return cmd.run(as_json=as_json, requeue=requeue)


@sync_app.command("move-aside")
def sync_move_aside(
    path: str = typer.Argument(..., help="The unusable queue database that `auth doctor` names."),
    as_json: bool = JSON_OPTION,
) -> int:
    """Rename an unusable queue database (and its -wal/-shm) aside, never deleting it."""
    from synclease.cli import sync_move_aside as cmd

    return cmd.run(path, as_json)


@auth_app.command("login")
def auth_login(
    server: str = typer.Option(..., "--server", help="Server URL (http/https)."),
    principal: str | None = typer.Option(None, "--principal"),
    team: str | None = typer.Option(None, "--team"),
    as_json: bool = JSON_OPTION,
) -> int:
    """Store a session; the token is read from stdin (hidden prompt on a terminal), never from argv."""
    from synclease.cli import auth_login as cmd

    return cmd.run(server, principal, team, as_json)


@auth_app.command("status")
def auth_status(as_json: bool = JSON_OPTION) -> int:
    """Show the stored session (never the token); exit 1 if not logged in."""
    from synclease.cli import auth_status as cmd

    return cmd.run(as_json=as_json)


@auth_app.command("logout")
def auth_logout(as_json: bool = JSON_OPTION) -> int:
    """Forget the session and retire the daemon that holds it."""
    from synclease.cli import auth_logout as cmd

    return cmd.run(as_json=as_json)


@auth_app.command("doctor")
def auth_doctor(  # noqa: PLR0917 (typer reads each option as a parameter)
    as_json: bool = JSON_OPTION,
    reset: bool = switch(direct.RESET),
    force: bool = switch(direct.FORCE),
    output_format: DoctorFormat = FORMAT_OPTION,
    output: Path | None = OUTPUT_OPTION,
    family: str = typer.Option(
        "sync", "--family", help="The daemon family to govern: sync, or one declared via SYNCLEASE_FAMILIES."
    ),
) -> int:
    """Diagnose this root's sync daemons (read-only), or clean them with --reset."""
    from synclease.cli import auth_doctor as cmd

    return cmd.run(
        as_json=as_json,
        reset=reset,
        force=force,
        output_format=output_format.value,
        output=output,
        family=family,
    )


@sync_app.command("history")
def sync_history(
    as_json: bool = JSON_OPTION,
    limit: int = typer.Option(20, "--limit", help="How many events, newest first."),
    instance: str | None = typer.Option(None, "--instance", help="Only this instance (an id or its prefix)."),
) -> int:
    """The fleet's ledger: why each daemon started, retired, was reaped or vanished."""
    from synclease.cli import sync_history as cmd

    return cmd.run(as_json, limit, instance)


@protocol_app.command("check")
def protocol_check(
    *,
    port: int | None = typer.Option(None, "--port", help="The daemon's loopback port."),
    root: str | None = typer.Option(None, "--root", help="Or: its daemon root (the singleton it records)."),
    family: str = typer.Option("sync", "--family", help="With --root: the daemon family."),
    retire: bool = typer.Option(False, "--retire", help="Also check retirement: this retires the daemon."),
    retire_by: str = typer.Option("request", "--retire-by", help="With --retire: request or superseded."),
    watch: float = typer.Option(30.0, "--watch", help="Watch the lease at most this long (at most one TTL)."),
    as_json: bool = JSON_OPTION,
) -> int:
    """Judge one live daemon clause by clause (exit 0 iff no clause fails, 2 for bad input)."""
    from synclease.cli import protocol_check as cmd

    return cmd.run(
        port=port,
        root=root,
        family=family,
        retire=retire,
        retire_by=retire_by,
        watch_seconds=watch,
        as_json=as_json,
    )


def explain(
    target: str = typer.Argument(..., help="A port, a PID, or the start of an instance id."),
    as_json: bool = JSON_OPTION,
) -> int:
    """Why a listener or lease is what it is: proofs, class, reuse, cleanup, history, next step."""
    from synclease.cli import explain_cmd as cmd

    return cmd.run(target, as_json)


def dashboard(
    project: str | None = typer.Option(None, "--project", help="Project directory (default: the cwd)."),
    port_hint: int | None = typer.Option(None, "--port-hint", help="First port to try, in 9237-9336."),
    stop: bool = typer.Option(False, "--stop", help="Stop this project's dashboard."),
    as_json: bool = JSON_OPTION,
) -> int:
    """Start (or reuse) this project's read-only fleet dashboard; never starts or touches sync."""
    from synclease.cli import dashboard_cmd as cmd

    return cmd.run(project, port_hint, stop, as_json)


GROUPS = ("sync", "auth", "dashboard", "explain", "protocol")


def _narrowed(group: typer.Typer, help_text: str, sub: str | None) -> typer.Typer:
    """``group`` with only the subcommand ``sub`` when it names one, else the whole group (so its
    ``--help`` and an unknown subcommand's error list them all)."""
    chosen = [info for info in group.registered_commands if info.name == sub]
    if not chosen:
        return group
    narrow = typer.Typer(help=help_text, no_args_is_help=True)
    narrow.registered_commands = chosen
    return narrow


def register(app: typer.Typer, words: list[str] | None = None) -> None:
    """Add the command tree to ``app``: all of it (``words`` None), or only the group and subcommand
    that the command line's first words name. typer builds every registered command's parameters at
    each start, and a ``sync start`` need not pay for the other fourteen."""
    only = words[0] if words and words[0] in GROUPS else None
    sub = words[1] if words and len(words) > 1 else None
    for name in GROUPS:
        if only not in (None, name):
            continue
        if name == "sync":
            app.add_typer(_narrowed(sync_app, SYNC_HELP, sub if only else None), name="sync")
        elif name == "auth":
            app.add_typer(_narrowed(auth_app, AUTH_HELP, sub if only else None), name="auth")
        elif name == "protocol":
            app.add_typer(_narrowed(protocol_app, PROTOCOL_HELP, sub if only else None), name="protocol")
        elif name == "dashboard":
            app.command("dashboard")(dashboard)
        else:
            app.command("explain")(explain)
