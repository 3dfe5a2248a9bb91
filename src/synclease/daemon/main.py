"""``synclease sync run``: the daemon in the foreground (also what ``ensure`` spawns, detached)."""

from __future__ import annotations

import logging
import sys

from synclease.daemon.runner import DaemonOptions, SyncDaemon
from synclease.daemon.work import Worker

LOG_FORMAT = "%(asctime)s %(levelname)s pid=%(process)d %(message)s"


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("synclease")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def run_daemon(opts: DaemonOptions, worker: Worker | None = None) -> int:
    """Start, serve until the governor retires us, retire. Startup errors propagate (exit codes)."""
    configure_logging()
    daemon = SyncDaemon(opts, worker)
    daemon.start()
    daemon.install_signal_handlers()
    reason: str = "error"
    try:
        reason = daemon.serve()
    finally:
        daemon.retire(reason)
    return 0
