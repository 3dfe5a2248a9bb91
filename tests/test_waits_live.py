"""Live: a quiet idle daemon and a drain that waits for its batch (issues #19 and #24; ADR 0015)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from synclease.adapters import http_client as httpc
from tests.conftest import (
    Sandbox,
    get_health,
    hold_a_batch,
    lease_of,
    login,
    pid_alive,
    renewed_past,
    wait_for,
)
from tests.receiver import Receiver

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/task"),
]


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_an_idle_daemon_ends_its_handler_threads_and_still_answers_and_renews(sandbox: Sandbox) -> None:
    started = sandbox.cli_json("sync", "start")
    pid, port = started["pid"], started["port"]
    assert get_health(port) is not None  # a request starts a handler thread
    # main loop, accept loop, worker: the handler ends after its idle time (11 threads before).
    wait_for(lambda: threads_of(pid) <= 3, timeout=30)
    assert get_health(port) is not None  # and a new request is answered at once
    renewed_past(sandbox, started["instance_id"], 1.0)  # the lease is still renewed on time
    assert pid_alive(pid)


def _count_writes(path: Path, stop: threading.Event, inodes: list[int]) -> None:
    """Each write replaces the file (a new inode): count them while ``stop`` is not set."""
    while not stop.wait(0.001):
        try:
            inode = path.stat().st_ino
        except FileNotFoundError:
            continue
        if not inodes or inodes[-1] != inode:
            inodes.append(inode)


def test_a_draining_daemon_renews_once_a_heartbeat_and_leaves_when_its_batch_settles(
    sandbox: Sandbox, rx: Receiver
) -> None:
    login(sandbox, rx)
    pushed = hold_a_batch(sandbox, rx, env={"SYNCLEASE_HEARTBEAT_SECONDS": "0.5"})
    pid = pushed["daemon"]["pid"]
    lease = next(lease for lease in sandbox.leases() if lease["pid"] == pid)
    assert httpc.post(lease["port"], "/api/retire", lease["token"], 2.0, {}).ok
    wait_for(
        lambda: (now := lease_of(sandbox, lease["instance_id"])) is not None and now["state"] == "draining"
    )
    stop, inodes = threading.Event(), []
    path = sandbox.root / "leases" / "sync" / f"{lease['instance_id']}.json"
    watcher = threading.Thread(target=_count_writes, args=(path, stop, inodes), daemon=True)
    watcher.start()
    try:
        renewed_past(sandbox, lease["instance_id"], 1.5)  # three heartbeats while the upload is held
    finally:
        stop.set()
        watcher.join(5)
    assert rx.accepted_total == 0, "the upload ended before the count: nothing was proven"
    # A heartbeat's renewal each (4 at most with a late one), never the 50 ms drain tick's ~30.
    assert len(inodes) <= 6, len(inodes)
    rx.release()
    assert rx.wait_for(lambda: set(pushed["ids"]) <= rx.accepted_ids)
    wait_for(lambda: not pid_alive(pid))
    assert "retired reason=retire_requested" in sandbox.logs()
