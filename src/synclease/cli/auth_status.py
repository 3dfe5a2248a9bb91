"""``synclease auth status [--json]``: the stored session, never its token (exit 1 if none)."""

from __future__ import annotations

from typing import Any

from synclease.adapters.session_store import load_session
from synclease.cli.output import emit_json, stdout_console
from synclease.core.clock import to_wire
from synclease.services import context


def run(as_json: bool) -> int:
    ctx = context.load()
    session = load_session(ctx.root)
    doc: dict[str, Any] = {"logged_in": session is not None}
    if session is not None:
        doc.update(
            server_url=session.server_url,
            principal=session.principal,
            team=session.team,
            auth_scope=session.auth_scope,
            created_at=to_wire(session.created_at),
        )
    if as_json:
        emit_json(doc)
    elif session is None:
        stdout_console.print("not logged in (run `synclease auth login --server URL`)")
    else:
        stdout_console.print(f"logged in to {session.server_url} (scope {session.auth_scope})", markup=False)
    return 0 if session is not None else 1
