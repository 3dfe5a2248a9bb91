"""The one error boundary, for the CLI and for the detached daemons alike.

* a :class:`~synclease.core.errors.SyncleaseError` → its exit code and one line on stderr (plus a
  spawned daemon's log tail when it died at start);
* Ctrl-C → exit 130 and one line;
* a broken pipe on stdout (the reader went away, as ``| head`` does) → exit 1, nothing said;
* any other exception (a bug) → exit 70 and one line naming a crash report written under the root's
  ``logs/``; the traceback goes there, never to the terminal. Crash reports are bounded in size and
  count (:data:`MAX_CRASH_REPORTS`, the oldest removed first).

The log format of the detached processes is :mod:`synclease.adapters.daemon_log`'s.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from synclease.adapters.environment import check_platform
from synclease.core.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_PROBLEM,
    DaemonStartError,
    SyncleaseError,
)

MAX_CRASH_REPORTS = 10
MAX_CRASH_REPORT_BYTES = 64 * 1024
CRASH_PREFIX = "crash-"


def _say(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # no stderr to speak of: the exit code still says it
        pass


def _crash_dir() -> Path:
    """The root's ``logs/`` if the root can be used, else a private directory under the temp dir."""
    import tempfile

    from synclease.adapters.fsio import ensure_private_dir
    from synclease.adapters.root import locate

    try:
        directory = locate().log_dir
        ensure_private_dir(directory)
        return directory
    except (SyncleaseError, OSError):
        fallback = Path(tempfile.gettempdir()) / f"synclease-{os.geteuid()}"
        ensure_private_dir(fallback)
        return fallback


def _prune(directory: Path, keep: int) -> None:
    reports = sorted(
        (p for p in directory.glob(f"{CRASH_PREFIX}*.txt") if p.is_file() and not p.is_symlink()),
        key=lambda p: p.name,
    )
    for old in reports[: max(0, len(reports) - keep)]:
        with contextlib.suppress(OSError):
            old.unlink()


def write_crash_report(exc: BaseException) -> Path | None:
    """Write the traceback of ``exc`` to a new crash report; None if even that failed. (Imports for
    this rare path are local: every CLI start goes through the boundary.)"""
    import time
    import traceback

    from synclease.adapters.fsio import atomic_write

    text = "".join(traceback.format_exception(exc))
    header = f"synclease crash report\npid {os.getpid()}\nargv {sys.argv!r}\n\n"
    data = (header + text).encode("utf-8", "replace")[:MAX_CRASH_REPORT_BYTES]
    try:
        directory = _crash_dir()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = directory / f"{CRASH_PREFIX}{stamp}-{os.getpid()}.txt"
        atomic_write(path, data)
        _prune(directory, MAX_CRASH_REPORTS)
    except (SyncleaseError, OSError):
        return None
    return path


def _silence_stdout() -> None:
    """Point stdout at ``/dev/null``: the interpreter's last flush must not fail on the broken pipe again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)


def guarded(body: Callable[[], int]) -> int:
    """Run ``body`` and turn whatever it raises into an exit code and one line on stderr. An unsupported
    platform is refused first, before ``body`` can touch the OS."""
    try:
        check_platform()
        return body()
    except SyncleaseError as exc:
        _say(f"synclease: error: {exc.one_line()}")
        if isinstance(exc, DaemonStartError) and exc.log_tail:
            _say("--- daemon log (last lines) ---\n" + exc.log_tail)
        return exc.exit_code
    except KeyboardInterrupt:
        _say("synclease: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read our output went away (``| head``): exit 1 quietly, as click does on typer's lines.
        # (Socket errors never get here: the HTTP client returns them as data.)
        _silence_stdout()
        return EXIT_PROBLEM
    except Exception as exc:
        report = write_crash_report(exc)
        where = f"crash report: {report}" if report else "no crash report could be written"
        _say(f"synclease: internal error ({type(exc).__name__}); {where}")
        return EXIT_INTERNAL
