"""``synclease auth doctor [--json | --format text|json|openmetrics] [--output PATH] [--reset [--force]]
[--family NAME]``.

``--family`` governs another declared family (``SYNCLEASE_FAMILIES``, ADR 0019) with the same table.

Without ``--reset`` it only reads: it never signals, deletes or creates anything but the ``--output``
file it is asked for. With ``--reset`` it sweeps ``safe_auto`` daemons and stale leases, and
``operator_required`` ones only with ``--force`` or an interactive yes (:mod:`synclease.services.reset`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from synclease.cli.output import emit_json, json_text
from synclease.core.errors import BadInputError
from synclease.core.fleet import IdentityRecord, Survey
from synclease.services import context, doctor
from synclease.services.context import Context, actor
from synclease.services.survey import survey


def _confirm(manual: list[IdentityRecord]) -> bool:
    from synclease.cli.doctor_render import confirm_operator_required

    return confirm_operator_required(manual)


def _choose(as_json: bool, output_format: str, output: Path | None) -> str:
    if as_json and output_format not in ("text", "json"):
        raise BadInputError(
            f"--json and --format {output_format} ask for two formats", hint="give only one of them"
        )
    chosen = "json" if as_json else output_format
    if output is not None and chosen == "text":
        raise BadInputError(
            "--output writes a machine format", hint="add --format openmetrics or --format json"
        )
    return chosen


def _show(
    ctx: Context, found: Survey, chosen: str, output: Path | None, extra: dict[str, Any] | None = None
) -> None:
    stall = ctx.settings.stall_seconds
    if chosen == "openmetrics":
        text = doctor.metrics(ctx.root, found, ctx.clock, stall)
    else:
        doc = doctor.render(ctx.root, found, ctx.clock, stall)
        doc.update(extra or {})
        if chosen == "text":
            from synclease.cli.doctor_render import render

            render(doc)
            return
        if output is None:
            emit_json(doc)
            return
        text = json_text(doc)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        doctor.write_report(output, text)


def run(
    as_json: bool,
    reset: bool,
    force: bool,
    *,
    output_format: str = "text",
    output: Path | None = None,
    family: str = "sync",
) -> int:
    if force and not reset:
        raise BadInputError(
            "--force only goes with --reset", hint="run `synclease auth doctor --reset --force`"
        )
    chosen = _choose(as_json, output_format, output)
    ctx = context.load(create=reset)
    store, ports = ctx.governed(family)
    if not reset:
        _show(ctx, survey(store, ctx.clock, ports), chosen, output)
        return 0
    interactive = chosen == "text" and sys.stdin.isatty()
    from synclease.services.reset import reset as sweep_fleet  # the read-only doctor never loads it

    done = sweep_fleet(
        store,
        ctx.clock,
        ports,
        force=force,
        confirm=_confirm if interactive else None,
        by=actor("auth doctor reset"),
    )
    _show(ctx, done.after, chosen, output, {"reset_result": done.result.to_json()})
    return 1 if done.result.failed else 0
