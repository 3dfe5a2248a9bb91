"""``synclease auth login --server URL [--principal P] [--team T]``: token from stdin, never argv."""

from __future__ import annotations

import getpass
import sys

from synclease.adapters.session_store import save_session
from synclease.cli.output import emit_json, stdout_console
from synclease.core.errors import BadInputError
from synclease.core.session import new_session
from synclease.services import context
from synclease.services.context import actor
from synclease.services.ensure import ensure
from synclease.services.singleton import live_singleton

MAX_STDIN_CHARS = 8192


def read_token() -> str:
    if sys.stdin is None:
        raise BadInputError("no token given", hint="pipe the token on stdin")
    if sys.stdin.isatty():
        return getpass.getpass("token: ")
    text = sys.stdin.read(MAX_STDIN_CHARS + 1)
    if len(text) > MAX_STDIN_CHARS:
        raise BadInputError("the token on stdin is too long", hint="pipe only the token")
    return text


def run(server: str, principal: str | None, team: str | None, as_json: bool) -> int:
    ctx = context.load()
    session = new_session(server, read_token(), principal, team, ctx.clock.now())
    save_session(ctx.root, session)
    # A running daemon holds the previous login in memory: replace it now, so the fix is one step.
    daemon = None
    if live_singleton(ctx.store, ctx.clock) is not None:
        result = ensure(ctx.root, ctx.version, ctx.settings.port_range, ctx.clock, by=actor("auth login"))
        daemon = {"pid": result.pid, "port": result.port, "reused": result.reused}
    if as_json:
        emit_json(
            {
                "logged_in": True,
                "server_url": session.server_url,
                "auth_scope": session.auth_scope,
                "daemon": daemon,
            }
        )
    else:
        who = f" as {session.principal}" if session.principal else ""
        then = f"; daemon pid {daemon['pid']} uses it" if daemon else "; `synclease sync start` picks it up"
        stdout_console.print(f"logged in to {session.server_url}{who}{then}", markup=False)
    return 0
