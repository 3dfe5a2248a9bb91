"""``synclease sync run [--replace]``: the daemon in the foreground."""

from __future__ import annotations

from synclease.cli import context
from synclease.daemon.main import run_daemon
from synclease.daemon.runner import DaemonOptions, new_instance_id
from synclease.errors import BadInputError
from synclease.lease.codec import INSTANCE_ID_RE


def run(replace: bool, managed: bool, instance_id: str | None) -> int:
    ctx = context.load()
    if instance_id is not None and not INSTANCE_ID_RE.match(instance_id):
        raise BadInputError(f"--instance-id {instance_id!r} is not a valid instance id")
    opts = DaemonOptions(
        root=ctx.root,
        settings=ctx.settings,
        clock=ctx.clock,
        version=ctx.version,
        instance_id=instance_id or new_instance_id(),
        managed=managed,
        replace=replace,
    )
    return run_daemon(opts)
