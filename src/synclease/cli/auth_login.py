"""``synclease auth login --server URL [--principal P] [--team T]``: token from stdin, never argv."""

from __future__ import annotations

import getpass
import sys

from synclease.cli import context
from synclease.cli.output import emit_json, stdout_console
from synclease.errors import BadInputError
from synclease.work.session import new_session, save_session

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
    if as_json:
        emit_json({"logged_in": True, "server_url": session.server_url, "auth_scope": session.auth_scope})
    else:
        who = f" as {session.principal}" if session.principal else ""
        stdout_console.print(f"logged in to {session.server_url}{who}; `synclease sync start` picks it up")
    return 0
