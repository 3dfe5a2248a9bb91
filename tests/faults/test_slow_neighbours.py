"""Slow and hostile neighbours: a listener in the range that drips one header byte every 0.4 s. The
health probe has one hard deadline for the whole exchange, so the doctor is not held hostage, and
``--reset`` surveys outside the singleton lock, so a concurrent ``sync start`` never finds it busy."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import neighbours
from tests.conftest import Sandbox, listening_pids, wait_for

pytestmark = pytest.mark.live


def dripping(box: Sandbox, port: int) -> subprocess.Popen[bytes]:
    log = box.root.parent / f"drip-{port}.log"
    proc = box.popen(neighbours.argv("drip", port, log), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    wait_for(lambda: listening_pids(range(port, port + 1)).get(port) == proc.pid)
    return proc


def test_doctor_gives_a_dripping_listener_one_deadline_and_leaves_it_alone(sandbox: Sandbox) -> None:
    drip = dripping(sandbox, sandbox.ports[-1])
    doc = sandbox.cli_json("auth", "doctor")
    [row] = [i for i in doc["ignored"] if i["port"] == sandbox.ports[-1]]
    assert (row["pid"], row["skip_reason"]) == (None, "third_party")  # unclaimed, speaks no family: no walk
    reset = sandbox.cli_json("auth", "doctor", "--reset", "--force")["reset_result"]
    assert reset["swept"] == [] and reset["failed"] == []
    assert drip.poll() is None


def test_probe_of_a_dripping_listener_times_out_at_its_deadline(sandbox: Sandbox) -> None:
    from synclease.adapters.probe import fetch_health

    dripping(sandbox, sandbox.ports[-1])
    assert fetch_health(sandbox.ports[-1], timeout=0.5) == (None, "timeout")


def test_reset_next_to_a_slow_neighbour_never_makes_sync_start_find_the_lock_busy(sandbox: Sandbox) -> None:
    dripping(sandbox, sandbox.ports[-1])
    for _ in range(3):
        with ThreadPoolExecutor(max_workers=2) as pool:
            reset = pool.submit(sandbox.cli, "auth", "doctor", "--reset", "--json")
            start = pool.submit(sandbox.cli, "sync", "start", "--json")
            reset_proc, start_proc = reset.result(timeout=60), start.result(timeout=60)
        assert start_proc.returncode == 0, start_proc.stderr
        assert reset_proc.returncode == 0, reset_proc.stderr
        assert "busy" not in start_proc.stderr + reset_proc.stderr
