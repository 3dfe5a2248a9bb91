"""Spawn a detached daemon and wait until it answers health, failing fast if it dies first."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from synclease import httpc
from synclease.errors import DaemonStartError
from synclease.lease.codec import LeaseRecord
from synclease.lease.store import LeaseStore
from synclease.root import DaemonRoot
from synclease.singleton_view import health_matches_lease

SPAWN_DEADLINE_SECONDS = 10.0
POLL_SECONDS = 0.01
LOG_TAIL_LINES = 20


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def spawn_daemon(root: DaemonRoot, instance_id: str) -> subprocess.Popen[bytes]:
    """``python -m synclease.daemon --managed``: own session, stdin closed, output to the root's log."""
    log_path = root.log_path(instance_id)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    env = dict(os.environ, SYNCLEASE_HOME=str(root.path))
    argv = [sys.executable, "-m", "synclease.daemon", "--managed", "--instance-id", instance_id]
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            start_new_session=True,
            close_fds=True,
            cwd=root.path,
            env=env,
        )
    finally:
        os.close(fd)


def wait_healthy(
    proc: subprocess.Popen[bytes],
    store: LeaseStore,
    instance_id: str,
    deadline_s: float = SPAWN_DEADLINE_SECONDS,
) -> LeaseRecord:
    """Poll the child's lease and health until they agree; raise with the log tail if it exits."""
    log_path = store.root.log_path(instance_id)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            raise DaemonStartError(
                f"the sync daemon exited with code {code} during startup",
                hint=f"see {log_path}",
                log_tail=log_tail(log_path),
            )
        lease = store.read(instance_id).lease
        if lease is not None:
            reply = httpc.get_json(lease.port, "/api/health", timeout=0.5)
            if reply.ok and health_matches_lease(reply.document, lease):
                return lease
        time.sleep(POLL_SECONDS)
    raise DaemonStartError(
        f"the sync daemon did not answer health within {deadline_s:.0f}s",
        hint=f"see {log_path}",
        log_tail=log_tail(log_path),
    )
