"""``synclease auth doctor [--json] [--reset [--force]]``.

Without ``--reset`` it only reads: it never signals, deletes or creates anything. With ``--reset`` it
takes the singleton lock (so it never races a CLI that is spawning a daemon), sweeps ``safe_auto``
daemons and stale leases, and ``operator_required`` ones only with ``--force`` or an interactive yes.
"""

from __future__ import annotations

import sys
from typing import Any

from synclease.cli import context
from synclease.cli.output import emit_json
from synclease.core.errors import BadInputError
from synclease.core.fleet import CleanupClass, IdentityRecord
from synclease.services import doctor
from synclease.services.survey import survey
from synclease.services.sweep import sweep


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
    ctx = context.load(create=reset)
    store = ctx.store
    port_range = ctx.settings.port_range
    if not reset:
        _show(doctor.render(ctx.root, survey(store, ctx.clock, port_range), ctx.clock), as_json)
        return 0
    with store.singleton_lock():
        before = survey(store, ctx.clock, port_range)
        classes = {CleanupClass.SAFE_AUTO}
        manual = [r for r in before.orphans if r.cleanup_class is CleanupClass.OPERATOR_REQUIRED]
        interactive = not as_json and sys.stdin.isatty()
        if force or (manual and interactive and _confirm(manual)):
            classes.add(CleanupClass.OPERATOR_REQUIRED)
        result = sweep(before, store, ctx.clock, classes)
        doc = doctor.render(ctx.root, survey(store, ctx.clock, port_range), ctx.clock)
    doc["reset_result"] = result.to_json()
    _show(doc, as_json)
    return 1 if result.failed else 0
