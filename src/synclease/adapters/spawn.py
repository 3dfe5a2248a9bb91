"""Spawn a detached child (a sync daemon or a dashboard) and wait until it proves healthy, failing fast
with its log tail if it dies first. Shared by ``ensure`` and ``synclease dashboard``."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.log_files import log_tail
from synclease.core.clock import Clock
from synclease.core.errors import BadInputError, DaemonStartError

SPAWN_DEADLINE_SECONDS = 10.0
POLL_SECONDS = 0.01
CHILD_REAP_SECONDS = 2.0

T = TypeVar("T")


def python_module(module: str, *args: str) -> list[str]:
    """``python -m MODULE ARGS``: the interpreter of this install, so the child runs the same code."""
    return [sys.executable, "-m", module, *args]


def spawn_detached(
    argv: list[str], log_path: Path, cwd: Path, env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``argv`` in its own session, stdin closed, output appended to ``log_path`` (0600, never
    through a symlink). Returns the child and the log offset where its output starts."""
    try:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise BadInputError(
            f"cannot open {log_path}: {exc.strerror}", hint="remove it if it is a symlink"
        ) from None
    try:
        offset = os.lseek(fd, 0, os.SEEK_END)
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            start_new_session=True,
            close_fds=True,
            cwd=cwd,
            env=None if env is None else dict(env),
        )
    finally:
        os.close(fd)
    return child, offset


def wait_for_child(
    child: subprocess.Popen[bytes],
    probe: Callable[[], T | None],
    *,
    what: str,
    log_path: Path,
    offset: int = 0,
    deadline_s: float = SPAWN_DEADLINE_SECONDS,
    clock: Clock = SYSTEM_CLOCK,
) -> T:
    """Poll ``probe`` until it returns a value; raise with the log tail if the child exits first or
    the deadline passes (then the child, our own unreaped one, is killed by its handle and reaped)."""
    deadline = clock.monotonic() + deadline_s
    while clock.monotonic() < deadline:
        code = child.poll()
        if code is not None:
            raise DaemonStartError(
                f"the {what} exited with code {code} during startup",
                hint=f"see {log_path}",
                log_tail=log_tail(log_path, offset),
                code=f"exit_{code}",
            )
        found = probe()
        if found is not None:
            return found
        clock.sleep(POLL_SECONDS)
    child.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=CHILD_REAP_SECONDS)
    raise DaemonStartError(
        f"the {what} did not answer health within {deadline_s:.0f}s",
        hint=f"see {log_path}",
        log_tail=log_tail(log_path, offset),
        code="no_health",
    )
