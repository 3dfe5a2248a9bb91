"""Daemon entry points: ``synclease sync run`` (foreground) and ``python -m synclease.daemon`` (spawned).

The spawned shape imports neither typer nor rich, to keep an idle daemon small.
"""

from __future__ import annotations

from synclease import package_version, settings
from synclease.clock import SYSTEM_CLOCK
from synclease.daemon.runner import DaemonOptions, SyncDaemon, WorkIdentity
from synclease.daemon.setup_work import build_work
from synclease.entry import configure_logging
from synclease.errors import BadInputError
from synclease.lease.codec import INSTANCE_ID_RE, new_instance_id
from synclease.root import open_root


def options_from_env(replace: bool, managed: bool, instance_id: str | None) -> DaemonOptions:
    if instance_id is not None and not INSTANCE_ID_RE.match(instance_id):
        raise BadInputError(f"--instance-id {instance_id!r} is not a valid instance id")
    return DaemonOptions(
        root=open_root(),
        settings=settings.load(),
        clock=SYSTEM_CLOCK,
        version=package_version(),
        instance_id=instance_id or new_instance_id(),
        managed=managed,
        replace=replace,
    )


def run_daemon(opts: DaemonOptions) -> int:
    """Start, serve until the governor retires us, retire. Startup errors propagate (exit codes)."""
    configure_logging()
    work = build_work(opts.root, opts.instance_id, opts.clock, opts.settings.claim_seconds)
    identity = WorkIdentity(work.auth_scope, work.server_url, work.queue_db_path, work.session_id)
    daemon = SyncDaemon(opts, work.worker, identity)
    daemon.start()
    daemon.install_signal_handlers()
    reason: str = "error"
    try:
        reason = daemon.serve()
    finally:
        daemon.retire(reason)
    return 0
