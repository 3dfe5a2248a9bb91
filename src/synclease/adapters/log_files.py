"""The root's per-instance daemon logs: listed, pruned (the policy is :mod:`synclease.core.retention`),
and their tails read."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Collection
from pathlib import Path

from synclease.adapters.root import DaemonRoot
from synclease.core.ledger import LOG_TAIL_LINES
from synclease.core.retention import LogFile, logs_to_prune

LOG_TAIL_BYTES = 8192


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


def log_tail(path: Path, offset: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines written to ``path`` since ``offset`` (so only this spawn's output)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(offset, handle.tell() - LOG_TAIL_BYTES))
        text = handle.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])
