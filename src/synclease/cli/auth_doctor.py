"""``synclease auth doctor [--json] [--reset [--force]]``.

Without ``--reset`` it only reads: it never signals, deletes or creates anything. With ``--reset`` it
takes the singleton lock (so it never races a CLI that is spawning a daemon), sweeps ``safe_auto``
daemons and stale leases, and ``operator_required`` ones only with ``--force`` or an interactive yes.
"""

from __future__ import annotations

import sys
from typing import Any

from synclease import httpc
from synclease.cli import context
from synclease.cli.output import emit_json
from synclease.errors import BadInputError
from synclease.fleet import report
from synclease.fleet.model import CleanupClass, IdentityRecord
from synclease.fleet.survey import Survey, survey
from synclease.fleet.sweep import sweep
from synclease.work.session import SessionFileError, load_session


def _session(ctx: context.Context) -> dict[str, Any] | None:
    try:
        session = load_session(ctx.root)
    except SessionFileError as exc:
        return {"problem": exc.reason}
    if session is None:
        return None
    return {
        "server_url": session.server_url,
        "principal": session.principal,
        "team": session.team,
        "auth_scope": session.auth_scope,
    }


def _auth_problem(found: Survey) -> bool:
    single = found.singleton
    if single is None:
        return False
    reply = httpc.get_json(single.port, "/api/health", timeout=0.5)
    sync = reply.document.get("sync") if reply.ok and isinstance(reply.document, dict) else None
    return bool(isinstance(sync, dict) and sync.get("auth_problem"))


def document(ctx: context.Context, found: Survey) -> dict[str, Any]:
    return report.build(
        found,
        generated_at=ctx.clock.now(),
        session=_session(ctx),
        auth_problem=_auth_problem(found),
    )


def _show(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(doc)
        return
    from synclease.cli.doctor_render import render

    render(doc)


def _confirm(manual: list[IdentityRecord]) -> bool:
    from synclease.cli.doctor_render import confirm_operator_required

    return confirm_operator_required(manual)


def run(as_json: bool, reset: bool, force: bool) -> int:
    if force and not reset:
        raise BadInputError(
            "--force only goes with --reset", hint="run `synclease auth doctor --reset --force`"
        )
    ctx = context.load()
    store = ctx.store
    port_range = ctx.settings.port_range
    if not reset:
        doc = document(ctx, survey(store, ctx.clock, port_range))
        _show(doc, as_json)
        return 0
    with store.singleton_lock():
        before = survey(store, ctx.clock, port_range)
        classes = {CleanupClass.SAFE_AUTO}
        manual = [r for r in before.orphans if r.cleanup_class is CleanupClass.OPERATOR_REQUIRED]
        interactive = not as_json and sys.stdin.isatty()
        if force or (manual and interactive and _confirm(manual)):
            classes.add(CleanupClass.OPERATOR_REQUIRED)
        result = sweep(before, store, ctx.clock, classes)
        doc = document(ctx, survey(store, ctx.clock, port_range))
    doc["reset_result"] = result.to_json()
    _show(doc, as_json)
    return 1 if result.failed else 0
