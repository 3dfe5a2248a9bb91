"""``synclease sync start [--json]``: make sure one healthy daemon serves this root."""

from __future__ import annotations

from synclease.cli.output import emit_json, stdout_console
from synclease.services import context
from synclease.services.context import actor
from synclease.services.ensure import ensure


def run(as_json: bool, force_spawn: bool = False) -> int:
    ctx = context.load()
    result = ensure(
        ctx.root,
        ctx.version,
        ctx.settings.port_range,
        ctx.clock,
        by=actor("sync start"),
        force_spawn=force_spawn,
    )
    if as_json:
        emit_json(result.to_json())
    else:
        verb = "reusing" if result.reused else "started"
        stdout_console.print(
            f"sync daemon {verb}: pid {result.pid}, port {result.port}, "
            f"version {result.package_version}, instance {result.instance_id}"
        )
        if result.pid_note is not None:
            stdout_console.print(f"  pid: {result.pid_note}", markup=False)
    return 0
