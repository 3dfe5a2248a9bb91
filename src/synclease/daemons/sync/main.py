"""Sync daemon entry points: ``synclease sync run`` (foreground) and ``python -m synclease.daemons.sync``
(spawned by ``ensure``). The spawned shape imports neither typer nor rich, to keep an idle daemon small.
"""

from __future__ import annotations

from synclease.adapters import environment
from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.daemon_log import configure_logging
from synclease.adapters.ids import new_instance_id
from synclease.adapters.root import open_root
from synclease.core.errors import BadInputError
from synclease.core.lease import INSTANCE_ID_RE
from synclease.daemons.sync.daemon import DaemonOptions, SyncDaemon
from synclease.daemons.sync.wiring import build_work


def options_from_env(replace: bool, managed: bool, instance_id: str | None) -> DaemonOptions:
    if instance_id is not None and not INSTANCE_ID_RE.match(instance_id):
        raise BadInputError(f"--instance-id {instance_id!r} is not a valid instance id")
    return DaemonOptions(
        root=open_root(),
        settings=environment.settings(),
        clock=SYSTEM_CLOCK,
        version=environment.package_version(),
        instance_id=instance_id or new_instance_id(),
        managed=managed,
        replace=replace,
    )


def run_daemon(opts: DaemonOptions) -> int:
    """Start, serve until the governor retires us, retire. Startup errors propagate (exit codes)."""
    configure_logging(opts.root.log_path(opts.instance_id) if opts.managed else None)
    work = build_work(opts.root, opts.instance_id, opts.clock, opts.settings.claim_seconds)
    return SyncDaemon(opts, work).run()
