"""``synclease auth logout``: forget the session and ask the daemon holding it to retire."""

from __future__ import annotations

from synclease import httpc
from synclease.cli import context
from synclease.cli.output import emit_json, stdout_console
from synclease.singleton_view import live_singleton
from synclease.work.session import clear_session


def run(as_json: bool) -> int:
    ctx = context.load()
    removed = clear_session(ctx.root)
    retired = False
    store = ctx.store
    with store.singleton_lock():
        view = live_singleton(store, ctx.clock)
        if view is not None and view.lease.auth_scope is not None:
            # The daemon keeps the old token in memory: it must not upload with it any more.
            store.clear_singleton_if(view.lease.instance_id)
            retired = httpc.post(view.lease.port, "/api/retire", view.lease.token, timeout=1.0).ok
    if as_json:
        emit_json({"logged_out": removed, "daemon_retired": retired})
    else:
        stdout_console.print("logged out" if removed else "was not logged in")
    return 0
