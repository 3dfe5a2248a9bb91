"""Live lifecycle of the sync daemon through the CLI: real processes, real loopback ports."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest

from synclease.adapters import http_client as httpc
from synclease.adapters.queue import EventQueue
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
from tests.neighbours import blocked_ports
from tests.receiver import Receiver

pytestmark = pytest.mark.live
SCHEMA = json.loads((Path(__file__).parent.parent / "protocol" / "health-v1.schema.json").read_text())


def live_daemon_ports(box: Sandbox) -> list[int]:
    return sorted(port for port in box.listeners() if get_health(port))


def test_start_status_stop(sandbox: Sandbox) -> None:
    started = sandbox.cli_json("sync", "start")
    assert started["reused"] is False
    assert started["port"] in sandbox.ports
    health = get_health(started["port"])
    assert health is not None
    jsonschema.validate(health, SCHEMA)
    assert health["pid"] == started["pid"] and health["daemon_family"] == "sync"
    assert "token" not in json.dumps(health)
    lease_token = sandbox.leases()[0]["token"]
    assert lease_token not in json.dumps(health)

    status = sandbox.cli_json("sync", "status")
    assert status["healthy"] is True
    assert status["singleton"]["instance_id"] == started["instance_id"]

    stopped = sandbox.cli_json("sync", "stop")
    assert stopped["stopped"] is True and stopped["cleanup_path"] == "http_retire"
    wait_for(lambda: not pid_alive(started["pid"]))
    assert sandbox.leases() == []
    not_running = sandbox.cli("sync", "status", "--json")
    assert not_running.returncode == 1
    assert json.loads(not_running.stdout)["healthy"] is False


def test_start_twice_reuses_one_listener(sandbox: Sandbox) -> None:
    first = sandbox.cli_json("sync", "start")
    second = sandbox.cli_json("sync", "start")
    assert second["reused"] is True
    assert second["pid"] == first["pid"] and second["instance_id"] == first["instance_id"]
    assert live_daemon_ports(sandbox) == [first["port"]]


def test_ten_concurrent_starts_make_one_daemon(sandbox: Sandbox) -> None:
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: sandbox.cli_json("sync", "start"), range(10)))
    assert len({r["instance_id"] for r in results}) == 1
    assert sum(1 for r in results if not r["reused"]) == 1
    assert len(live_daemon_ports(sandbox)) == 1
    assert len(sandbox.leases()) == 1


def test_version_supersede_matrix(sandbox: Sandbox) -> None:
    pids = []
    for version in ("3.2.2", "3.2.3", "3.2.4"):
        started = sandbox.cli_json("sync", "start", env={"SYNCLEASE_VERSION": version})
        assert started["package_version"] == version and started["reused"] is False
        pids.append(started["pid"])
    for old in pids[:-1]:
        wait_for(lambda old=old: not pid_alive(old))
    ports = wait_for(lambda: (p := live_daemon_ports(sandbox)) and len(p) == 1 and p)
    health = get_health(ports[0])
    assert health is not None and health["package_version"] == "3.2.4" and health["pid"] == pids[-1]
    logs = sandbox.logs()
    assert logs.count("retired reason=") == 2
    assert "reason=retire_requested" in logs or "reason=superseded" in logs
    # Two installs sharing the root: the older one reuses the newer singleton, no ping-pong.
    again = sandbox.cli_json("sync", "start", env={"SYNCLEASE_VERSION": "3.2.3"})
    assert again["reused"] is True and again["pid"] == pids[-1] and again["package_version"] == "3.2.4"
    assert len(live_daemon_ports(sandbox)) == 1


def test_superseded_daemon_retires_by_itself_without_being_asked(sandbox: Sandbox) -> None:
    """The old daemon refuses the polite retire request, yet governs itself out on the next tick."""
    old = sandbox.cli_json(
        "sync", "start", env={"SYNCLEASE_VERSION": "3.2.2", "SYNCLEASE_FAILPOINTS": "ignore_retire"}
    )
    new = sandbox.cli_json("sync", "start", env={"SYNCLEASE_VERSION": "3.2.4"})
    assert new["reused"] is False
    wait_for(lambda: not pid_alive(old["pid"]))
    assert "retired reason=superseded" in sandbox.logs()


def test_sync_run_twice_exits_3_and_replace_supersedes(sandbox: Sandbox) -> None:
    first = sandbox.run_daemon()
    port = wait_for(lambda: next(iter(live_daemon_ports(sandbox)), None))
    second = sandbox.cli("sync", "run")
    assert second.returncode == 3
    assert "already serves" in second.stderr and "Traceback" not in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1

    replacement = sandbox.run_daemon("--replace")
    assert first.wait(timeout=10) == 0
    log = first.log_path.read_text()  # type: ignore[attr-defined]
    assert "retired reason=" in log
    new_port = wait_for(lambda: next(iter(p for p in live_daemon_ports(sandbox) if p != port), None))
    health = get_health(new_port)
    assert health is not None and health["pid"] == replacement.pid


def test_idle_daemon_retires(sandbox: Sandbox) -> None:
    started = sandbox.cli_json("sync", "start", env={"SYNCLEASE_IDLE_RETIREMENT_SECONDS": "0.6"})
    wait_for(lambda: not pid_alive(started["pid"]))
    assert "retired reason=idle" in sandbox.logs()
    assert sandbox.leases() == []
    assert not (sandbox.root / "sync.singleton.json").exists()


def test_busy_daemon_answers_health_and_does_not_retire_mid_upload(sandbox: Sandbox, rx: Receiver) -> None:
    login(sandbox, rx)
    pushed = hold_a_batch(sandbox, rx, env={"SYNCLEASE_IDLE_RETIREMENT_SECONDS": "0.4"})
    port, pid = pushed["daemon"]["port"], pushed["daemon"]["pid"]
    instance_id = get_health(port)["instance_id"]  # type: ignore[index]
    # Idle time passes several times over while the upload is in flight: the daemon keeps ticking
    # (its lease is renewed well past the idle bound), keeps answering health, and does not retire.
    renewed_past(sandbox, instance_id, 1.5)
    for _ in range(5):
        assert get_health(port) is not None
        assert pid_alive(pid)
    assert rx.accepted_total == 0, "the upload ended before the checks ran: nothing was proven"
    rx.release()
    assert rx.wait_for(lambda: set(pushed["ids"]) <= rx.accepted_ids)
    wait_for(lambda: not pid_alive(pid))
    assert "retired reason=idle" in sandbox.logs()


def test_control_endpoints_need_the_token(sandbox: Sandbox) -> None:
    started = sandbox.cli_json("sync", "start")
    port = started["port"]
    assert httpc.post(port, "/api/retire", "wrong-token", 2.0).status == 403
    assert httpc.request(port, "POST", "/api/shutdown", timeout=2.0).status == 403
    assert httpc.get_json(port, "/api/nope", 2.0).status == 404
    assert pid_alive(started["pid"]) and get_health(port) is not None


def test_daemon_that_dies_at_start_is_reported_with_its_log_tail(sandbox: Sandbox) -> None:
    """Every port of the sandbox's range is taken, so the spawned daemon exits at once."""
    with blocked_ports(sandbox.ports):
        proc = sandbox.cli("sync", "start")
    assert proc.returncode == 1
    assert "exited with code" in proc.stderr  # failed fast, not at the health deadline
    assert "no free loopback port" in proc.stderr  # the log tail
    assert "Traceback" not in proc.stderr.splitlines()[0]


def test_sigterm_retires_gracefully(sandbox: Sandbox) -> None:
    daemon = sandbox.run_daemon()
    wait_for(lambda: live_daemon_ports(sandbox))
    daemon.terminate()
    assert daemon.wait(timeout=10) == 0
    assert "retired reason=signal" in daemon.log_path.read_text()  # type: ignore[attr-defined]
    assert sandbox.leases() == []


def test_sync_run_interrupted_by_sigint_retires_and_exits_130(sandbox: Sandbox) -> None:
    """README's exit-code table: 130 = interrupted. Ctrl-C still retires cleanly (lease gone)."""
    daemon = sandbox.run_daemon()
    wait_for(lambda: live_daemon_ports(sandbox))
    daemon.send_signal(signal.SIGINT)
    assert daemon.wait(timeout=10) == 130
    assert "retired reason=signal" in daemon.log_path.read_text()  # type: ignore[attr-defined]
    assert sandbox.leases() == [] and not (sandbox.root / "sync.singleton.json").exists()


def test_a_second_signal_cuts_the_drain_short_but_still_retires_and_releases_the_batch(
    sandbox: Sandbox, rx: Receiver
) -> None:
    login(sandbox, rx)
    daemon = sandbox.run_daemon()
    wait_for(lambda: live_daemon_ports(sandbox))
    pushed = hold_a_batch(sandbox, rx)  # reuses the foreground daemon: its upload is now held
    assert pushed["daemon"]["pid"] == daemon.pid
    instance_id = sandbox.leases()[0]["instance_id"]

    daemon.send_signal(signal.SIGTERM)
    wait_for(lambda: lease_of(sandbox, instance_id) and lease_of(sandbox, instance_id)["state"] == "draining")
    assert daemon.poll() is None  # the first signal drains: work in flight is not abandoned
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=15) == 0
    log = daemon.log_path.read_text()  # type: ignore[attr-defined]
    assert "second signal: drain cut short" in log and "retired reason=signal" in log
    assert sandbox.leases() == [] and not (sandbox.root / "sync.singleton.json").exists()
    # Nothing lost: the batch it held was released, so any daemon may claim it at once.
    released = []
    for path in sorted((sandbox.root / "queue").glob("*.sqlite3")):
        with EventQueue(path) as queue:
            released += [event.id for event in queue.claim_batch("check", 10, 30.0)]
    assert released == pushed["ids"]


def test_bad_environment_is_one_clear_line(sandbox: Sandbox) -> None:
    proc = sandbox.cli("sync", "start", env={"SYNCLEASE_HEARTBEAT_SECONDS": "fast"})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "SYNCLEASE_HEARTBEAT_SECONDS" in lines[0]
    assert sandbox.listeners() == {}


def test_python_dash_m_version() -> None:
    out = subprocess.run([sys.executable, "-m", "synclease", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("synclease ")
