"""``synclease sync stop [--json]``: stop the singleton gracefully via its token, escalating on proof."""

from __future__ import annotations

from synclease.cli.output import emit_json, stdout_console
from synclease.services import context
from synclease.services.context import actor
from synclease.services.retire import stop_singleton


def run(as_json: bool) -> int:
    ctx = context.load()
    stopped = stop_singleton(ctx.store, ctx.clock, ctx.settings.port_range, by=actor("sync stop"))
    if stopped is None:
        document: dict[str, object] = {"stopped": False, "reason": "not_running"}
    else:
        lease, outcome = stopped.lease, stopped.outcome
        document = {
            "stopped": outcome.ok,
            "pid": lease.pid,
            "port": lease.port,
            "instance_id": lease.instance_id,
            "cleanup_path": outcome.path.value if outcome.path else None,
            "failure_reason": outcome.failure,
        }
    if as_json:
        emit_json(document)
    elif stopped is None:
        stdout_console.print("no healthy sync daemon to stop")
    elif stopped.outcome.ok:
        stdout_console.print(f"stopped sync daemon pid {stopped.lease.pid} ({document['cleanup_path']})")
    else:
        stdout_console.print(f"could not stop pid {stopped.lease.pid}: {document['failure_reason']}")
    return 0 if stopped is None or stopped.outcome.ok else 1
