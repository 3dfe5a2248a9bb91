"""The log of a detached daemon: its stderr, which the spawner opened on its per-instance log file."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s pid=%(process)d %(message)s"
#: A detached daemon's log is rotated past this size; one rotation (``.1``) is kept.
MAX_LOG_BYTES = 1024 * 1024


class BoundedLog(logging.StreamHandler):  # type: ignore[type-arg]
    """Logs to stderr, which for a detached daemon *is* its log file (opened by the spawner). Past
    :data:`MAX_LOG_BYTES` the file is renamed to ``<name>.1`` (replacing the previous one) and a fresh
    one takes its place on descriptors 1 and 2, so stray writes land there too. It rotates only while
    stderr is still that very file (never a terminal, never a link)."""

    def __init__(self, path: Path | None) -> None:
        super().__init__(sys.stderr)
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if self.path is not None:
            with contextlib.suppress(OSError):
                self._maybe_rotate(self.path)

    def _maybe_rotate(self, path: Path) -> None:
        current = os.fstat(2)
        if current.st_size <= MAX_LOG_BYTES:
            return
        named = os.stat(path, follow_symlinks=False)
        if (named.st_dev, named.st_ino) != (current.st_dev, current.st_ino):
            return
        self.flush()
        os.replace(path, path.with_name(path.name + ".1"))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        try:
            os.dup2(fd, 1)
            os.dup2(fd, 2)
        finally:
            os.close(fd)


def configure_logging(log_path: Path | None = None) -> None:
    """Log lines to stderr; ``log_path``: stderr is that file, keep it bounded (:class:`BoundedLog`)."""
    handler = BoundedLog(log_path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("synclease")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
