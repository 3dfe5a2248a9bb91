"""The daemon's real work, live: auth session, durable queue, upload to a loopback receiver.

Every test runs real daemons through the CLI in a temporary root (``sandbox``) and uploads to
:class:`tests.receiver.Receiver` on an ephemeral ``127.0.0.1`` port. Nothing waits on wall time:
every wait polls an observable fact (receiver state, ``/api/health``, the lease file, the process
table). Timings printed as ``MEASURE`` lines are informational and never asserted.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import time
from collections.abc import Callable
from typing import Any

import psutil
import pytest

from synclease.adapters.queue import EventQueue
from tests.conftest import (
    BLOCK,
    Sandbox,
    get_health,
    lease_of,
    login,
    pid_alive,
    push,
    renewed_past,
    wait_for,
)
from tests.receiver import Receiver

pytestmark = pytest.mark.live

DRAIN_TIMEOUT = 60.0


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture
def wide_sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """A sandbox with room for two daemons at once."""
    return sandbox_factory("root", 2 * BLOCK)


def measure(name: str, value: float, unit: str) -> None:
    print(f"\nMEASURE {name} = {value:.3f} {unit}")


def new_token() -> str:
    return "sltok-" + secrets.token_urlsafe(24)


def sync_of(port: int) -> dict[str, Any] | None:
    health = get_health(port)
    return health["sync"] if health else None


def disk_depth(box: Sandbox) -> int:
    """Events left in every queue database of the root (the local-only queue included)."""
    total = 0
    for path in sorted((box.root / "queue").glob("*.sqlite3")):
        with EventQueue(path) as queue:
            total += queue.depth()
    return total


def daemon_log(box: Sandbox, instance_id: str) -> str:
    return (box.root / "logs" / f"daemon-{instance_id}.log").read_text(errors="replace")


def all_arrived(rx: Receiver, ids: list[str]) -> bool:
    return set(ids) <= rx.accepted_ids


def duplicates(rx: Receiver) -> set[str]:
    return {event_id for event_id, count in rx.accepted_counts.items() if count > 1}


def wait_drained(port: int) -> dict[str, Any]:
    """Wait until the daemon on ``port`` reports an empty queue; return its sync status."""
    found: dict[str, Any] = wait_for(
        lambda: (sync := sync_of(port)) is not None and sync["queue_depth"] == 0 and sync,
        timeout=DRAIN_TIMEOUT,
    )
    return found


# --- delivery -------------------------------------------------------------------------------------


def test_thousand_pushed_events_all_arrive_exactly_once(sandbox: Sandbox, rx: Receiver) -> None:
    token = new_token()
    login(sandbox, rx, token)
    ids: list[str] = []
    daemons = []
    started = time.monotonic()
    for chunk in range(4):
        doc = push(sandbox, 250, tag=f"chunk{chunk}")
        ids += doc["ids"]
        daemons.append(doc["daemon"])
    assert len(set(ids)) == 1000
    # The first push spawned the daemon, the others reused it.
    assert [d["reused"] for d in daemons] == [False, True, True, True]
    assert len({d["pid"] for d in daemons}) == 1

    wait_for(lambda: all_arrived(rx, ids), timeout=DRAIN_TIMEOUT)
    measure("end_to_end_1000_events_per_s (4 pushes + drain)", 1000 / (time.monotonic() - started), "ev/s")
    sync = wait_drained(daemons[0]["port"])
    assert sync["consecutive_failures"] == 0 and sync["last_sync"] is not None
    assert sync["auth_problem"] is False

    assert duplicates(rx) == set()  # no crash in this test: exactly once
    assert set(rx.accepted_ids) == set(ids)
    assert {r.authorization for r in rx.requests} == {f"Bearer {token}"}
    received = {
        (e["id"], e["type"], json.dumps(e["data"], sort_keys=True)) for r in rx.requests for e in r.events
    }
    assert {(t, d) for _, t, d in received} == {
        ("test.event", json.dumps({"n": n, "tag": f"chunk{c}"}, sort_keys=True))
        for c in range(4)
        for n in range(250)
    }
    status = sandbox.cli_json("sync", "status")
    assert status["singleton"]["sync"]["queue_depth"] == 0
    assert disk_depth(sandbox) == 0


def test_events_pushed_before_login_are_uploaded_after_login(sandbox: Sandbox, rx: Receiver) -> None:
    doc = push(sandbox, 1000, tag="early")
    assert doc["daemon"] is None  # not logged in: local-only, no daemon spawned
    assert sandbox.listeners() == {}
    assert disk_depth(sandbox) == 1000

    login(sandbox, rx, new_token())
    began = time.monotonic()
    started = sandbox.cli_json("sync", "start")
    wait_for(lambda: all_arrived(rx, doc["ids"]), timeout=DRAIN_TIMEOUT)
    measure(
        "drain_1000_queued_events_per_s (sync start -> all received)",
        1000 / (time.monotonic() - began),
        "ev/s",
    )
    wait_drained(started["port"])
    assert duplicates(rx) == set()
    assert disk_depth(sandbox) == 0  # the local-only queue was adopted, not copied
    assert "adopted 1000 event(s) queued before login" in daemon_log(sandbox, started["instance_id"])


# --- crash ----------------------------------------------------------------------------------------


def test_sigkill_mid_upload_then_next_start_delivers_everything(sandbox: Sandbox, rx: Receiver) -> None:
    # A short claim so the dead daemon's batch is claimable again soon (default 30 s).
    sandbox.env["SYNCLEASE_CLAIM_SECONDS"] = "1.5"
    login(sandbox, rx, new_token())
    rx.hold()
    doc = push(sandbox, 250, tag="crash")
    pid, port = doc["daemon"]["pid"], doc["daemon"]["port"]
    health = get_health(port)
    assert health is not None and health["pid"] == pid

    wait_for(lambda: rx.arrived >= 1)  # a batch is on the wire, its answer held
    in_flight = set(rx.arrivals[0])
    assert in_flight and in_flight <= set(doc["ids"])
    os.kill(pid, signal.SIGKILL)  # only the daemon that push reported and health confirmed
    wait_for(lambda: not pid_alive(pid))
    # The held request is answered into a closed socket: the server has that batch, the daemon never knew.
    rx.release()
    wait_for(lambda: len(rx.requests) >= 1)
    assert rx.arrived == 1  # the dead daemon sent nothing else

    started = sandbox.cli_json("sync", "start")
    assert started["reused"] is False and started["pid"] != pid
    wait_for(lambda: all_arrived(rx, doc["ids"]), timeout=DRAIN_TIMEOUT)
    wait_drained(started["port"])
    # At-least-once across the crash: exactly the batch in flight at the kill was sent again, nothing else.
    assert duplicates(rx) == in_flight
    assert set(rx.accepted_ids) == set(doc["ids"])
    assert disk_depth(sandbox) == 0


# --- receiver down, slow receiver, idle retirement ------------------------------------------------


def test_receiver_down_events_stay_queued_then_drain_when_back(sandbox: Sandbox, rx: Receiver) -> None:
    login(sandbox, rx, new_token())
    rx.stop()  # connections to its port are now refused; the session still points there
    doc = push(sandbox, 150, tag="down")
    pid, port = doc["daemon"]["pid"], doc["daemon"]["port"]

    sync = wait_for(
        lambda: (s := sync_of(port)) is not None and s["consecutive_failures"] >= 3 and s, timeout=30
    )
    assert sync["queue_depth"] == 150 and sync["last_sync"] is None and sync["auth_problem"] is False
    assert disk_depth(sandbox) == 150
    # Backoff grows: the daemon logs each failure with its next delay.
    # (The log line of a failure is written just after its count is: wait for the lines too.)
    delays = wait_for(
        lambda: (
            len(found := [float(d) for d in re.findall(r"next try in ([0-9.]+)s", sandbox.logs())]) >= 3
            and found
        )
    )
    assert delays[0] < delays[1] < delays[2], delays
    assert rx.accepted_total == 0

    rx.start()  # back, on the same port
    wait_for(lambda: all_arrived(rx, doc["ids"]), timeout=DRAIN_TIMEOUT)
    sync = wait_for(
        lambda: (
            (s := sync_of(port)) is not None
            and s["queue_depth"] == 0
            and s["consecutive_failures"] == 0
            and s
        ),
        timeout=DRAIN_TIMEOUT,
    )
    assert sync["last_sync"] is not None
    health = get_health(port)
    assert health is not None and health["pid"] == pid  # the same daemon: it kept trying, never retired
    assert duplicates(rx) == set()
    assert disk_depth(sandbox) == 0


def test_daemon_with_upload_in_flight_outlives_idle_retirement(sandbox: Sandbox, rx: Receiver) -> None:
    idle = 1.0
    login(sandbox, rx, new_token())
    rx.hold()
    doc = push(sandbox, 150, tag="slow", env={"SYNCLEASE_IDLE_RETIREMENT_SECONDS": str(idle)})
    pid, port = doc["daemon"]["pid"], doc["daemon"]["port"]
    health = get_health(port)
    assert health is not None
    instance = health["instance_id"]

    wait_for(lambda: rx.arrived >= 1)
    # The daemon's governor keeps ticking well past the idle deadline while the upload is held.
    renewed_past(sandbox, instance, seconds=3 * idle)
    assert pid_alive(pid)
    health = get_health(port)
    assert health is not None and health["lease"]["state"] == "serving"
    assert health["sync"]["queue_depth"] == 150 and rx.accepted_total == 0
    assert "retired" not in daemon_log(sandbox, instance)

    rx.release()
    wait_for(lambda: all_arrived(rx, doc["ids"]), timeout=DRAIN_TIMEOUT)
    # With the work done, idle retirement does fire.
    wait_for(lambda: not pid_alive(pid), timeout=30)
    assert "retired reason=idle" in daemon_log(sandbox, instance)
    assert duplicates(rx) == set()
    assert disk_depth(sandbox) == 0


# --- supersede ------------------------------------------------------------------------------------


def test_supersede_during_slow_upload_old_daemon_finishes_its_batch(
    wide_sandbox: Sandbox, rx: Receiver
) -> None:
    box = wide_sandbox
    login(box, rx, new_token())
    rx.hold()
    doc = push(box, 250, tag="supersede", env={"SYNCLEASE_VERSION": "3.2.2"})
    old_pid, old_port = doc["daemon"]["pid"], doc["daemon"]["port"]
    old_health = get_health(old_port)
    assert old_health is not None
    old_instance = old_health["instance_id"]
    wait_for(lambda: rx.arrived >= 1)
    old_batch = set(rx.arrivals[0])

    new = box.cli_json("sync", "start", env={"SYNCLEASE_VERSION": "3.2.4"})
    assert new["reused"] is False and new["pid"] != old_pid

    # The old daemon drains: it keeps its batch in flight, stays alive and answers health.
    wait_for(lambda: (lease := lease_of(box, old_instance)) is not None and lease["state"] == "draining")
    assert pid_alive(old_pid)
    drained = get_health(old_port)
    assert drained is not None and drained["sync"]["running"] is False
    # The new singleton continues the queue meanwhile (its request is held too).
    wait_for(lambda: rx.arrived >= 2)
    assert not set(rx.arrivals[1]) & old_batch  # it did not take the old daemon's claimed batch

    rx.release()
    released = time.monotonic()
    wait_for(lambda: not pid_alive(old_pid), timeout=30)
    measure("superseded_exit_after_batch_answered", time.monotonic() - released, "s")
    wait_for(lambda: all_arrived(rx, doc["ids"]), timeout=DRAIN_TIMEOUT)
    wait_drained(new["port"])

    log = daemon_log(box, old_instance)
    assert "draining reason=" in log and "retired reason=" in log
    assert "released" not in log and "sync upload failed" not in log  # it finished, not gave up
    assert duplicates(rx) == set()  # no crash, no lapse: every event exactly once
    assert old_batch <= rx.accepted_ids
    assert disk_depth(box) == 0


def test_superseded_daemon_whose_upload_never_answers_releases_its_batch(
    wide_sandbox: Sandbox, rx: Receiver
) -> None:
    """Worst case: the batch in flight never gets an answer. The old daemon gives up at the upload
    timeout, gives the batch back, exits; the new singleton re-sends it. Nothing is lost."""
    box = wide_sandbox
    login(box, rx, new_token())
    rx.hold()
    doc = push(box, 250, tag="stuck", env={"SYNCLEASE_VERSION": "3.2.2"})
    old_pid, old_port = doc["daemon"]["pid"], doc["daemon"]["port"]
    old_health = get_health(old_port)
    assert old_health is not None
    old_instance = old_health["instance_id"]
    wait_for(lambda: rx.arrived >= 1)
    old_batch = set(rx.arrivals[0])

    superseded = time.monotonic()
    new = box.cli_json("sync", "start", env={"SYNCLEASE_VERSION": "3.2.4"})
    assert new["reused"] is False
    wait_for(lambda: not pid_alive(old_pid), timeout=60)
    measure("superseded_exit_with_unanswered_batch (worst case)", time.monotonic() - superseded, "s")
    old_log = daemon_log(box, old_instance)
    assert "sync upload failed (timed out)" in old_log and "retired reason=" in old_log

    rx.release()
    wait_for(lambda: all_arrived(rx, doc["ids"]), timeout=DRAIN_TIMEOUT)
    wait_drained(new["port"])
    # The old batch was sent again by the new singleton (the held first copy also counts as received).
    assert all(rx.accepted_counts[event_id] >= 2 for event_id in old_batch)
    assert set(rx.accepted_ids) == set(doc["ids"])
    assert disk_depth(box) == 0


# --- auth -----------------------------------------------------------------------------------------


def test_401_is_an_auth_problem_and_doctor_says_log_in_again(sandbox: Sandbox, rx: Receiver) -> None:
    login(sandbox, rx, new_token())
    rx.answer(401)
    doc = push(sandbox, 5, tag="denied")
    port = doc["daemon"]["port"]
    sync = wait_for(lambda: (s := sync_of(port)) is not None and s["auth_problem"] and s)
    assert sync["queue_depth"] == 5 and sync["consecutive_failures"] >= 1  # kept, not dropped
    assert disk_depth(sandbox) == 5

    doctor = sandbox.cli_json("auth", "doctor")
    findings = {f["id"]: f for f in doctor["findings"]}
    assert "auth_rejected" in findings, doctor["findings"]
    command = findings["auth_rejected"]["remediation"]["command"]
    assert command.startswith("synclease auth login")
    assert rx.url in command
    # 401 is not retried hot: after it (and the one retry push's kick may force) the daemon waits for
    # the backoff cap; across two seconds of its own heartbeats no further request arrives.
    instance = doctor["daemon"]["instance_id"]
    renewed_past(sandbox, instance, seconds=0.5)
    attempts = len(rx.requests)
    assert 1 <= attempts <= 2
    renewed_past(sandbox, instance, seconds=2.0)
    assert len(rx.requests) == attempts


def test_following_the_auth_login_remediation_drains_the_queue(wide_sandbox: Sandbox, rx: Receiver) -> None:
    """The server revoked the old token; the operator logs in again with a new one and starts sync."""
    box = wide_sandbox
    old_token, fresh_token = new_token(), new_token()
    login(box, rx, old_token)
    rx.require_token(fresh_token)  # the old token is refused (401), the fresh one accepted
    doc = push(box, 5, tag="relogin")
    wait_for(lambda: (s := sync_of(doc["daemon"]["port"])) is not None and s["auth_problem"])

    login(box, rx, fresh_token)
    started = box.cli_json("sync", "start")
    wait_for(lambda: all_arrived(rx, doc["ids"]), timeout=15)
    sync = wait_drained(started["port"])
    assert sync["auth_problem"] is False
    accepted = [r for r in rx.requests if 200 <= r.status < 300]
    assert {r.authorization for r in accepted} == {f"Bearer {fresh_token}"}
    doctor = box.cli_json("auth", "doctor")
    assert "auth_rejected" not in {f["id"] for f in doctor["findings"]}


def test_session_token_never_leaks(sandbox: Sandbox, rx: Receiver) -> None:
    token = new_token()
    login(sandbox, rx, token)
    # A rejected attempt first (failure paths log), then a good one (success paths log).
    rx.answer(401)
    first = push(sandbox, 3, tag="leak")
    port, pid = first["daemon"]["port"], first["daemon"]["pid"]
    wait_for(lambda: (s := sync_of(port)) is not None and s["auth_problem"])
    rx.answer(None)
    second = push(sandbox, 2, tag="leak2")  # push kicks the daemon out of its backoff
    assert second["daemon"]["pid"] == pid
    wait_for(lambda: all_arrived(rx, first["ids"] + second["ids"]), timeout=DRAIN_TIMEOUT)
    wait_drained(port)
    assert {r.authorization for r in rx.requests} == {f"Bearer {token}"}  # the token is really used

    texts: dict[str, str] = {}
    for args in (("auth", "status"), ("auth", "doctor"), ("sync", "status")):
        proc = sandbox.cli(*args, "--json")
        assert proc.returncode == 0, proc.stderr
        texts[" ".join(args)] = proc.stdout + proc.stderr
    texts["health"] = json.dumps(get_health(port))
    texts["logs"] = sandbox.logs()
    texts["leases"] = json.dumps(sandbox.leases())
    daemon = psutil.Process(pid)
    texts["argv"] = "\0".join(daemon.cmdline())
    texts["environ"] = "\0".join(f"{k}={v}" for k, v in daemon.environ().items())
    assert texts["logs"].strip() and "auth_scope" in texts["auth status"]
    leaked = [name for name, text in texts.items() if token in text]
    assert leaked == []


@pytest.mark.parametrize(
    ("server", "token_input", "says"),
    [
        ("not a url", "tok-SECRET-1", "server URL"),
        ("ftp://sync.example.com", "tok-SECRET-1", "server URL"),
        ("http://", "tok-SECRET-1", "server URL"),
        ("http://sync.example.com:99999", "tok-SECRET-1", "server URL"),
        ("https://sync.example.com", "", "token is empty"),
        ("https://sync.example.com", "   \n", "token is empty"),
    ],
)
def test_login_bad_input_is_exit_2_and_one_line(
    sandbox: Sandbox, server: str, token_input: str, says: str
) -> None:
    proc = sandbox.cli("auth", "login", "--server", server, input=token_input.encode())
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("synclease: error:") and says in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert "tok-SECRET" not in proc.stderr
    assert not (sandbox.root / "session.json").exists()
    status = sandbox.cli("auth", "status", "--json")
    assert status.returncode == 1 and json.loads(status.stdout)["logged_in"] is False
