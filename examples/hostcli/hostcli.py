"""hostcli: a tiny host CLI that embeds synclease through its public API (docs/api.md).

Its commands do their own work, then call ``synclease.ensure`` (one healthy sync daemon for the
user, reused across every call) and ``synclease.enqueue`` (the event survives a crash, a full disk
on the server side or no network; the daemon uploads it). ``hostcli doctor`` shows what synclease
would clean up; ``hostcli watch`` runs a daemon of hostcli's own family (``hostcli_families.py``)
through synclease's lifecycle. Run it as ``python examples/hostcli/hostcli.py --help``.
"""

from __future__ import annotations

import json

import typer
from hostcli_families import WATCH

import synclease

app = typer.Typer(add_completion=False, no_args_is_help=True, help="A host CLI that embeds synclease.")


def _fail(exc: synclease.SyncleaseError) -> typer.Exit:
    typer.echo(f"hostcli: {exc.one_line()}", err=True)
    return typer.Exit(exc.exit_code)


@app.command()
def build(
    target: str = typer.Argument("all", help="What to build."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Build TARGET (pretend), then record a ``build.finished`` event for upload."""
    try:
        daemon = synclease.ensure(by="hostcli build")
        pushed = synclease.enqueue("build.finished", {"target": target}, by="hostcli build")
    except synclease.SyncleaseError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "target": target,
                    "daemon_pid": daemon.pid,
                    "reused": daemon.reused,
                    "event_ids": list(pushed.ids),
                    "queue_depth": pushed.queue_depth,
                }
            )
        )
        return
    verb = "reused" if daemon.reused else "started"
    typer.echo(
        f"built {target}; sync daemon {verb} (pid {daemon.pid}, port {daemon.port}); "
        f"queue depth {pushed.queue_depth}"
    )


@app.command()
def doctor(
    family: str = typer.Option("sync", "--family", help=f"sync, or {WATCH.name} (our watcher)."),
    reset: bool = typer.Option(False, "--reset", help="Clean what is provably ours and stale."),
) -> None:
    """What synclease sees on a family's port range, and what it would clean up (or cleans)."""
    try:
        found = (
            synclease.reset(family=family, by="hostcli doctor").after
            if reset
            else synclease.survey(family=family)
        )
    except synclease.SyncleaseError as exc:
        raise _fail(exc) from None
    for record in found.records:
        reason = record.skip_reason.value if record.skip_reason else "-"
        role = "singleton" if record.is_recorded_singleton else "orphan"
        typer.echo(f"port {record.port}: {role} pid {record.pid} {record.cleanup_class.value} ({reason})")
    if not found.records:
        typer.echo(f"no {family} daemon listening")


@app.command()
def watch(replace: bool = typer.Option(False, "--replace", help="Supersede a healthy watcher.")) -> None:
    """Run hostcli's watcher daemon in the foreground, on synclease's lifecycle: it holds a lease,
    reports itself, and retires when idle, replaced, asked, or on Ctrl-C."""
    try:
        synclease.serve(WATCH, replace=replace, version="1.0.0")
    except synclease.SyncleaseError as exc:
        raise _fail(exc) from None


if __name__ == "__main__":
    app()
