"""A second implementation of lease-v1 (``examples/node-daemon/``, Node.js standard library only, written
from ``protocol/``) governed live by this package: ``protocol check --retire`` passes on it, ``auth doctor``
classifies it like one of ours, ``sync start`` reuses it, ``--reset`` sweeps it only when its lease is
stale and its self-report agrees, and never touches it while it renews. Real processes, real ports."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from synclease.core.conformance_health import health_problems
from tests.conftest import Sandbox, get_health, pid_alive, wait_for

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(shutil.which("node") is None, reason="node (Node.js 20) is not installed"),
]

REPO = Path(__file__).parent.parent
DAEMON = REPO / "examples" / "node-daemon" / "daemon.js"
CHECK_SCHEMA = Draft202012Validator(json.loads((REPO / "protocol" / "check-v1.schema.json").read_text()))
HEALTH_SCHEMA = Draft202012Validator(json.loads((REPO / "protocol" / "health-v1.schema.json").read_text()))


def start_node(box: Sandbox, *args: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """The Node daemon as a direct child; returns it once its lease exists and it answers health."""
    box.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(box.root.parent / f"node-{len(box.children)}.log", "wb") as log:
        proc = box.popen(
            ["node", str(DAEMON), "--heartbeat", "0.2", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )

    def leased() -> dict[str, Any] | None:
        assert proc.poll() is None, f"node daemon exited {proc.returncode}"
        return next((lease for lease in box.leases() if lease.get("pid") == proc.pid), None)

    lease = wait_for(leased, what="the node daemon's lease")
    wait_for(lambda: get_health(lease["port"]), what="the node daemon's health")
    return proc, lease


def check(box: Sandbox, *args: str) -> tuple[int, dict[str, Any]]:
    proc = box.cli("protocol", "check", *args, "--json")
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    CHECK_SCHEMA.validate(doc)
    return proc.returncode, doc


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {clause["id"]: clause["status"] for clause in doc["clauses"]}


def doctor(box: Sandbox, *args: str) -> dict[str, Any]:
    proc = box.cli("auth", "doctor", *args, "--json")
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def gone(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is not None or not pid_alive(proc.pid)


def test_protocol_check_retire_passes_on_the_node_daemon(sandbox: Sandbox) -> None:
    proc, lease = start_node(sandbox)
    code, doc = check(sandbox, "--port", str(lease["port"]), "--retire")
    seen = statuses(doc)
    assert code == 0 and doc["ok"], doc
    assert {k for k, v in seen.items() if v == "pass"} >= {
        "L1.LEASE.SCHEMA", "L1.WRITE.ATOMIC", "L1.LEASE.RENEW", "L1.HEALTH.SCHEMA", "L1.HEALTH.AGREES",
        "L1.OS.AGREES", "L1.BIND.LOOPBACK", "L1.CONTROL.AUTH", "L1.CONTROL.RETIRE",
    }  # fmt: skip
    assert seen["L1.SINGLETON.SUPERSEDE"] == "n/a" and seen["L1.RETIRE.DRAIN"] == "n/a"
    assert doc["target"]["pid"] == proc.pid and doc["retire"] == "request"
    assert proc.wait(timeout=10) == 0
    assert sandbox.leases() == [] and not (sandbox.root / "sync.singleton.json").exists()
    assert list((sandbox.root / "leases" / "sync").iterdir()) == []  # lock file removed too


def test_protocol_check_supersession_and_drain_on_the_node_daemon(sandbox: Sandbox) -> None:
    proc, lease = start_node(sandbox)
    code, doc = check(sandbox, "--root", str(sandbox.root), "--retire", "--retire-by", "superseded")
    assert code == 0 and statuses(doc)["L1.SINGLETON.SUPERSEDE"] == "pass", doc
    assert proc.wait(timeout=10) == 0
    assert not (sandbox.root / "sync.singleton.json").exists()  # the placeholder record is gone

    proc, lease = start_node(sandbox)
    from synclease.adapters import http_client

    assert http_client.post(lease["port"], "/api/work", lease["token"], 1.0, {"seconds": 2}).status == 202
    code, doc = check(sandbox, "--port", str(lease["port"]), "--retire", "--watch", "2")
    assert code == 0 and statuses(doc)["L1.RETIRE.DRAIN"] == "pass", doc


def test_health_of_the_node_daemon_validates_against_the_schema(sandbox: Sandbox) -> None:
    _, lease = start_node(sandbox)
    document = get_health(lease["port"])
    HEALTH_SCHEMA.validate(document)
    assert health_problems(document, "sync") == ()


def test_doctor_classifies_it_like_ours_start_reuses_it_reset_spares_it_stop_retires_it(
    sandbox: Sandbox,
) -> None:
    proc, lease = start_node(sandbox)
    doc = doctor(sandbox)
    daemon = doc["daemon"]
    assert daemon["pid"] == proc.pid and daemon["cleanup_class"] == "never_touch"
    assert daemon["skip_reason"] == "recorded_singleton" and daemon["is_recorded_singleton"]
    assert daemon["self_report_matches_lease"] and daemon["self_report_matches_listener"]
    assert doc["orphans"] == []
    started = sandbox.cli_json("sync", "start")
    assert started["reused"] and started["pid"] == proc.pid and started["port"] == lease["port"]
    result = doctor(sandbox, "--reset")["reset_result"]
    assert result["swept"] == [] and result["failed"] == [] and pid_alive(proc.pid)  # renewing: untouched
    stopped = sandbox.cli_json("sync", "stop")
    assert stopped["stopped"] and stopped["cleanup_path"] == "http_retire" and stopped["pid"] == proc.pid
    assert proc.wait(timeout=10) == 0 and sandbox.leases() == []


def test_reset_sweeps_it_when_stale_and_never_while_it_renews(sandbox_factory: Any) -> None:
    box = sandbox_factory(size=4)
    renewing, fresh = start_node(box, "--managed")
    stale, _ = start_node(box, "--managed", "--ttl", "1", "--stop-renewing-after", "0.3")
    wait_for(lambda: _stale_seen(box, stale.pid), interval=0.2, what="the stale lease judged safe_auto")

    result = doctor(box, "--reset")["reset_result"]
    swept = {item["pid"]: item for item in result["swept"]}
    assert set(swept) == {stale.pid}, result
    assert swept[stale.pid]["reason"] == "expired_lease"
    wait_for(lambda: gone(stale), what="the stale daemon's exit")
    assert pid_alive(renewing.pid) and get_health(fresh["port"]) is not None
    assert [lease["instance_id"] for lease in box.leases()] == [fresh["instance_id"]]


def _stale_seen(box: Sandbox, pid: int) -> bool:
    orphans = doctor(box)["orphans"]
    return any(o["pid"] == pid and o["cleanup_class"] == "safe_auto" for o in orphans)


def test_protocol_check_on_the_built_in_sync_daemon(sandbox: Sandbox) -> None:
    started = sandbox.cli_json("sync", "start")
    code, doc = check(sandbox, "--root", str(sandbox.root), "--retire")
    assert code == 0 and doc["ok"], doc
    assert statuses(doc)["L1.CONTROL.RETIRE"] == "pass"
    wait_for(lambda: not pid_alive(started["pid"]), what="the daemon's exit")


def test_protocol_check_with_nothing_there_is_bad_input(sandbox: Sandbox) -> None:
    port = sandbox.ports.start
    proc = sandbox.cli("protocol", "check", "--port", str(port))
    assert proc.returncode == 2 and "nothing answers" in proc.stderr and "Traceback" not in proc.stderr
    sandbox.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    proc = sandbox.cli("protocol", "check", "--root", str(sandbox.root))
    assert proc.returncode == 2 and "no sync daemon is recorded" in proc.stderr
    proc = sandbox.cli("protocol", "check")
    assert proc.returncode == 2 and "--port" in proc.stderr
