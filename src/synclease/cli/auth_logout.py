"""``synclease auth logout``: forget the session and retire the daemon that holds it."""

from __future__ import annotations

from synclease.adapters.session_store import clear_session
from synclease.cli.output import emit_json, stdout_console
from synclease.services import context
from synclease.services.context import actor
from synclease.services.retire import retire_singleton


def run(as_json: bool) -> int:
    ctx = context.load()
    removed = clear_session(ctx.root)
    # The daemon keeps the old token in memory: it must not upload with it any more.
    logged_in = lambda view: view.lease.auth_scope is not None  # noqa: E731
    retired = retire_singleton(ctx.store, ctx.clock, logged_in, by=actor("auth logout"))
    if as_json:
        emit_json({"logged_out": removed, "daemon_retired": retired is not None and retired.accepted})
    else:
        stdout_console.print("logged out" if removed else "was not logged in")
    return 0
