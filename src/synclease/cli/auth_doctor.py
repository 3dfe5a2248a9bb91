"""``synclease auth doctor [--json] [--reset [--force]]``.

Without ``--reset`` it only reads: it never signals, deletes or creates anything. With ``--reset`` it
sweeps ``safe_auto`` daemons and stale leases, and ``operator_required`` ones only with ``--force`` or
an interactive yes (:mod:`synclease.services.reset`).
"""

from __future__ import annotations

import sys
from typing import Any

from synclease.cli.output import emit_json
from synclease.core.errors import BadInputError
from synclease.core.fleet import IdentityRecord
from synclease.services import context, doctor
from synclease.services.context import actor
from synclease.services.survey import survey


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
        _show(
            doctor.render(
                ctx.root, survey(store, ctx.clock, port_range), ctx.clock, ctx.settings.stall_seconds
            ),
            as_json,
        )
        return 0
    interactive = not as_json and sys.stdin.isatty()
    from synclease.services.reset import reset as sweep_fleet  # the read-only doctor never loads it

    done = sweep_fleet(
        store,
        ctx.clock,
        port_range,
        force=force,
        confirm=_confirm if interactive else None,
        by=actor("auth doctor reset"),
    )
    doc = doctor.render(ctx.root, done.after, ctx.clock, ctx.settings.stall_seconds)
    doc["reset_result"] = done.result.to_json()
    _show(doc, as_json)
    return 1 if done.result.failed else 0
