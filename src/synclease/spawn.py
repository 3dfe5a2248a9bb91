"""Spawn a detached child (a sync daemon or a dashboard) and wait until it proves healthy, failing
fast with its log tail if it dies first. Shared by ``ensure`` and ``synclease dashboard``."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from synclease import httpc
from synclease.errors import BadInputError, DaemonStartError
from synclease.lease.codec import LeaseRecord
from synclease.lease.store import LeaseStore
from synclease.root import DaemonRoot
from synclease.singleton_view import health_matches_lease

SPAWN_DEADLINE_SECONDS = 10.0
POLL_SECONDS = 0.01
LOG_TAIL_LINES = 20
LOG_TAIL_BYTES = 8192

T = TypeVar("T")


def log_tail(path: Path, offset: int = 0, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines written to ``path`` since ``offset`` (so only this spawn's output)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(offset, handle.tell() - LOG_TAIL_BYTES))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def spawn_detached(
    argv: list[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None
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
            env=env,
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
) -> T:
    """Poll ``probe`` until it returns a value; raise with the log tail if the child exits first or
    the deadline passes (then the child, our own unreaped one, is killed by its handle)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        code = child.poll()
        if code is not None:
            raise DaemonStartError(
                f"the {what} exited with code {code} during startup",
                hint=f"see {log_path}",
                log_tail=log_tail(log_path, offset),
            )
        found = probe()
        if found is not None:
            return found
        time.sleep(POLL_SECONDS)
    child.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=2.0)
    raise DaemonStartError(
        f"the {what} did not answer health within {deadline_s:.0f}s",
        hint=f"see {log_path}",
        log_tail=log_tail(log_path, offset),
    )


def spawn_daemon(root: DaemonRoot, instance_id: str) -> subprocess.Popen[bytes]:
    """``python -m synclease.daemon --managed``: detached, output to the root's per-instance log."""
    argv = [sys.executable, "-m", "synclease.daemon", "--managed", "--instance-id", instance_id]
    env = dict(os.environ, SYNCLEASE_HOME=str(root.path))
    child, _ = spawn_detached(argv, root.log_path(instance_id), root.path, env)
    return child


def wait_healthy(
    proc: subprocess.Popen[bytes],
    store: LeaseStore,
    instance_id: str,
    deadline_s: float = SPAWN_DEADLINE_SECONDS,
) -> LeaseRecord:
    """Wait until the child's lease exists and its live health matches it."""

    def probe() -> LeaseRecord | None:
        lease = store.read(instance_id).lease
        if lease is None:
            return None
        reply = httpc.get_json(lease.port, "/api/health", timeout=0.5)
        return lease if reply.ok and health_matches_lease(reply.document, lease) else None

    return wait_for_child(
        proc, probe, what="sync daemon", log_path=store.root.log_path(instance_id), deadline_s=deadline_s
    )
