"""The root's per-instance daemon logs: listed and pruned (the policy is :mod:`synclease.core.retention`)."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Collection

from synclease.adapters.root import DaemonRoot
from synclease.core.retention import LogFile, logs_to_prune


def list_logs(root: DaemonRoot) -> list[LogFile]:
    found: list[LogFile] = []
    try:
        names = os.listdir(root.log_dir)
    except OSError:
        return found
    for name in names:
        with contextlib.suppress(OSError):
            st = os.lstat(root.log_dir / name)
            if stat.S_ISREG(st.st_mode):
                found.append(LogFile(name, st.st_mtime))
    return found


def prune_logs(root: DaemonRoot, live: Collection[str]) -> int:
    """Remove the logs the retention policy lets go (never a link's target); how many were removed."""
    removed = 0
    for name in logs_to_prune(list_logs(root), live):
        with contextlib.suppress(OSError):
            os.unlink(root.log_dir / name)
            removed += 1
    return removed
