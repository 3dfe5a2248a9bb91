"""``synclease sync stop [--json]``: stop the singleton gracefully via its token, escalating on proof."""

from __future__ import annotations

from synclease.cli import context
from synclease.cli.output import emit_json, stdout_console
from synclease.fleet.escalate import Target, escalate
from synclease.fleet.osops import RealOps
from synclease.lease.codec import LeaseRecord
from synclease.singleton_view import live_singleton

STOP_STEP_SECONDS = 3.0


def run(as_json: bool) -> int:
    ctx = context.load()
    store = ctx.store
    with store.singleton_lock():
        view = live_singleton(store, ctx.clock)
        lease: LeaseRecord | None = view.lease if view else None
        if lease is not None:
            # Clear the record first: the retiring daemon then has no need for the lock we hold.
            store.clear_singleton_if(lease.instance_id)
    if lease is None:
        document: dict[str, object] = {"stopped": False, "reason": "not_running"}
    else:
        target = Target(lease.pid, lease.port, lease.process_start_time, lease.instance_id, lease.token)
        outcome = escalate(target, ctx.settings.port_range, RealOps(), step_timeout=STOP_STEP_SECONDS)
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
    elif lease is None:
        stdout_console.print("no healthy sync daemon to stop")
    elif document["stopped"]:
        stdout_console.print(f"stopped sync daemon pid {lease.pid} ({document['cleanup_path']})")
    else:
        stdout_console.print(f"could not stop pid {lease.pid}: {document['failure_reason']}")
    return 0 if lease is None or document["stopped"] else 1
