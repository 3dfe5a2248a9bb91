"""What the detached processes (``python -m synclease.daemon`` / ``.dashboard``) share: log format and
the error boundary. No typer/rich here, to keep those processes small."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from synclease.errors import EXIT_INTERRUPTED, SyncleaseError

LOG_FORMAT = "%(asctime)s %(levelname)s pid=%(process)d %(message)s"


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("synclease")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def run_guarded(body: Callable[[], int]) -> int:
    """Run ``body``; an expected failure is one line on stderr and its exit code, Ctrl-C is 130."""
    try:
        return body()
    except SyncleaseError as exc:
        sys.stderr.write(f"synclease: error: {exc.one_line()}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
