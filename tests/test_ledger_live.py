"""The fleet's memory, live: every event kind from real daemons, the doctor's history and findings,
respawn backoff, log pruning, and ``explain`` on each row of the classification table."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import Sandbox, get_health, pid_alive, wait_for
from tests.neighbours import blocked_ports
from tests.test_reaper_live import (
    LEGACY_SHAPED,
    doctor,
    http_listener,
    serving,
    spawn,
    stale_daemon,
    wait_expired,
)

pytestmark = pytest.mark.live

LEDGER_SCHEMA = json.loads((Path(__file__).parent.parent / "protocol" / "ledger-v1.schema.json").read_text())


def history(box: Sandbox, *args: str) -> list[dict[str, Any]]:
    """``sync history --json`` newest first; every event validated against the ledger schema."""
    doc = box.cli_json("sync", "history", "--limit", "200", *args)
    for event in doc["events"]:
        jsonschema.validate(event, LEDGER_SCHEMA)
    events: list[dict[str, Any]] = doc["events"]
    return events


def of(box: Sandbox, instance_id: str) -> list[tuple[str, str | None]]:
    """(event, reason) of one instance, oldest first."""
    return [(e["event"], e["reason"]) for e in reversed(history(box)) if e["instance_id"] == instance_id]


def instance_of(box: Sandbox, pid: int) -> str:
    found: str = wait_for(lambda: next((x["instance_id"] for x in box.leases() if x["pid"] == pid), None))
    return found


def test_spawned_serving_then_superseded(sandbox: Sandbox) -> None:
    old = sandbox.cli_json("sync", "start", env={"SYNCLEASE_VERSION": "3.2.2"})
    new = sandbox.cli_json("sync", "start", env={"SYNCLEASE_VERSION": "3.2.4"})
    wait_for(lambda: not pid_alive(old["pid"]))
    events = of(sandbox, old["instance_id"])
    assert events[:2] == [("spawned", None), ("serving", None)]
    assert events[-1][0] == "retired" and events[-1][1] in ("superseded", "replaced")
    [retired] = [
        e for e in history(sandbox) if e["instance_id"] == old["instance_id"] and e["event"] == "retired"
    ]
    assert retired["evidence"]["superseded_by"] == new["instance_id"]  # replaced names it too (issue 20)
    assert retired["evidence"]["superseded_generation"] is not None
    if retired["reason"] == "replaced":
        assert retired["by"]["command"] == "sync start"
    spawned = next(
        e for e in history(sandbox) if e["instance_id"] == new["instance_id"] and e["event"] == "spawned"
    )
    assert spawned["by"]["command"] == "sync start" and spawned["pid"] == new["pid"]


def test_idle_retirement_is_remembered_with_its_idle_time(sandbox: Sandbox) -> None:
    started = sandbox.cli_json("sync", "start", env={"SYNCLEASE_IDLE_RETIREMENT_SECONDS": "0.5"})
    wait_for(lambda: not pid_alive(started["pid"]))
    [retired] = [e for e in history(sandbox) if e["event"] == "retired"]
    assert retired["reason"] == "idle" and retired["evidence"]["idle_seconds"] >= 0.5
    assert retired["evidence"]["queue_depth"] == 0
    status = sandbox.cli("sync", "status", "--json")
    assert json.loads(status.stdout)["last_retirement"]["reason"] == "idle"


def test_an_idle_daemon_over_its_memory_cap_retires_and_the_next_cli_call_spawns_afresh(
    sandbox: Sandbox,
) -> None:
    proc = sandbox.run_daemon(env={"SYNCLEASE_MAX_RSS_MB": "1"})  # any daemon is bigger than 1 MiB
    assert proc.wait(timeout=30) == 0
    [retired] = [e for e in history(sandbox) if e["event"] == "retired"]
    assert retired["reason"] == "memory" and retired["pid"] == proc.pid
    fresh = sandbox.cli_json("sync", "start")
    assert fresh["reused"] is False and get_health(fresh["port"]) is not None


def test_operator_stop_says_who(sandbox: Sandbox) -> None:
    started = sandbox.cli_json("sync", "start")
    assert sandbox.cli_json("sync", "stop")["stopped"] is True
    wait_for(lambda: of(sandbox, started["instance_id"])[-1][0] == "retired")
    retired = next(e for e in history(sandbox) if e["event"] == "retired")
    assert retired["reason"] == "operator_stop" and retired["by"]["command"] == "sync stop"


def test_reset_records_what_it_reaped(sandbox_factory: Callable[..., Sandbox]) -> None:
    box = sandbox_factory(size=8)
    pile = [stale_daemon(box, "--managed") for _ in range(2)]
    wait_expired(box, *(lease for _, lease in pile))
    result = doctor(box, "--reset")["reset_result"]
    assert len(result["swept"]) == 2
    reaped = {e["instance_id"]: e for e in history(box) if e["event"] == "reaped"}
    for _, lease in pile:
        event = reaped[lease["instance_id"]]
        assert event["reason"] == "expired_lease" and event["by"]["command"] == "auth doctor reset"
        assert event["evidence"]["cleanup_path"] in ("http_retire", "terminate", "kill")


def test_sigkill_is_vanished_exactly_once_with_its_log_tail(sandbox: Sandbox) -> None:
    started = sandbox.cli_json("sync", "start")
    os.kill(started["pid"], signal.SIGKILL)
    wait_for(lambda: not pid_alive(started["pid"]))
    before = doctor(sandbox)  # read-only: shows the death, records nothing
    assert "silent_death" in {f["id"] for f in before["findings"]}
    assert before["history"][0]["event"] == "vanished"
    # the read-only doctor's synthesized event carries the log tail too (issue 20)
    assert any("serving instance=" in line for line in before["history"][0]["evidence"]["log_tail"])
    assert not any(e["event"] == "vanished" for e in history(sandbox))
    sandbox.cli_json("sync", "start")  # its startup reaper records it, once
    sandbox.cli_json("sync", "start")
    doctor(sandbox, "--reset")
    vanished = [e for e in history(sandbox) if e["event"] == "vanished"]
    assert len(vanished) == 1 and vanished[0]["instance_id"] == started["instance_id"]
    assert vanished[0]["reason"] == "holder_dead"
    assert any("serving instance=" in line for line in vanished[0]["evidence"]["log_tail"])
    assert "silent_death" in {f["id"] for f in doctor(sandbox)["findings"]}


def test_a_daemon_that_crashes_at_start_backs_off_after_three_and_force_spawn_clears_it(
    sandbox: Sandbox,
) -> None:
    with blocked_ports(sandbox.ports):  # every port taken: each spawned daemon exits at once
        for _ in range(3):
            proc = sandbox.cli("sync", "start")
            assert proc.returncode == 1 and "exited with code" in proc.stderr
        spawned_before = sum(e["event"] == "spawned" for e in history(sandbox))
        fast = sandbox.cli("sync", "start")
        assert fast.returncode == 1
        assert "not spawning it again" in fast.stderr and "--force-spawn" in fast.stderr
        assert "no free loopback port" in fast.stderr  # the last error's log tail
        assert sum(e["event"] == "spawned" for e in history(sandbox)) == spawned_before  # nothing spawned
        findings = {f["id"]: f for f in doctor(sandbox)["findings"]}
        assert findings["start_failures"]["remediation"]["command"] == "synclease sync start --force-spawn"
    failed = [e for e in history(sandbox) if e["event"] == "start_failed"]
    assert len(failed) == 3 and failed[0]["evidence"]["error_code"].startswith("exit_")
    started = sandbox.cli_json("sync", "start", "--force-spawn")
    assert get_health(started["port"]) is not None
    assert sandbox.cli("sync", "start").returncode == 0  # a start that served cleared the backoff


def test_daemon_logs_are_pruned_at_spawn(sandbox: Sandbox) -> None:
    logs = sandbox.root / "logs"
    sandbox.cli_json("sync", "start")
    for n in range(30):
        old = logs / f"daemon-{n:016x}.log"
        old.write_text("old\n")
        os.utime(old, (1_000_000 + n, 1_000_000 + n))
    sandbox.cli_json("sync", "stop")
    started = sandbox.cli_json("sync", "start")
    names = {p.name for p in logs.glob("daemon-*.log")}
    assert f"daemon-{started['instance_id']}.log" in names
    assert len(names) <= 20 + 2  # the 20 newest others, plus the live ones
    assert "daemon-0000000000000000.log" not in names  # oldest first


def test_a_hostile_ledger_is_reported_not_followed(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.cli_json("sync", "start")
    ledger = sandbox.root / "ledger" / "sync.jsonl"
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep\n")
    ledger.unlink()
    ledger.symlink_to(target)
    sandbox.cli_json("sync", "stop")
    assert target.read_text() == "keep\n"
    doc = sandbox.cli_json("sync", "history")
    assert doc["problems"] and doc["problems"][0]["reason"] == "symlink"
    assert sandbox.cli("auth", "doctor", "--json").returncode == 0


def explain(box: Sandbox, target: object, ok: int = 0) -> dict[str, Any]:
    proc = box.cli("explain", str(target), "--json")
    assert proc.returncode == ok, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_explain_each_row_of_the_table(sandbox_factory: Callable[..., Sandbox]) -> None:
    box = sandbox_factory(size=8)
    theirs = sandbox_factory("theirs")
    top = list(reversed(box.ports))
    single = box.cli_json("sync", "start")
    orphan, orphan_lease = stale_daemon(box, "--managed")
    live = spawn(box, "--managed")
    live_lease = serving(box, live)
    legacy = http_listener(box, top[0], LEGACY_SHAPED)
    web = http_listener(box, top[1], "<html>hi</html>", "text/html")
    dashboardish = http_listener(box, top[2], {"daemon_family": "dashboard", "project": "/p"})
    foreign = spawn(
        theirs, env={"SYNCLEASE_PORT_RANGE": f"{top[3]}-{top[3]}", "SYNCLEASE_PORT_HINT": str(top[3])}
    )
    serving(theirs, foreign)
    wait_expired(box, orphan_lease)

    doc = explain(box, single["port"])
    assert (
        doc["found"] and doc["skip_reason"] == "recorded_singleton" and doc["cleanup_class"] == "never_touch"
    )
    assert (
        doc["reuse"] == {"would_reuse": True, "why": doc["reuse"]["why"]}
        and "singleton" in doc["alive_because"]
    )
    assert doc["next"]["command"] == "synclease sync status"
    assert [e["event"] for e in doc["history"]][-2:] == ["serving", "spawned"]

    doc = explain(box, orphan.pid)
    assert (doc["cleanup_class"], doc["skip_reason"]) == ("safe_auto", None)
    assert doc["cleanup"]["reset"] is True and doc["next"]["command"] == "synclease auth doctor --reset"
    assert doc["proofs"]["lease"]["state"] == "expired" and doc["proofs"]["self_report"]["matches_lease"]

    doc = explain(box, live_lease["instance_id"][:8])
    assert (doc["cleanup_class"], doc["skip_reason"]) == ("operator_required", "lease_live")
    assert doc["cleanup"] == {"reset": False, "force": True, "why": doc["cleanup"]["why"]}
    assert "lease is live until" in doc["alive_because"]

    for port, reason, klass in (
        (top[0], "no_lease", "operator_required"),
        (top[1], "third_party", "never_touch"),
        (top[2], "other_family", "never_touch"),
        (top[3], "recorded_singleton", "never_touch"),  # theirs's singleton, judged by its root (issue 20)
    ):
        doc = explain(box, port)
        assert (doc["cleanup_class"], doc["skip_reason"]) == (klass, reason), (port, doc)
        assert doc["reuse"]["would_reuse"] is False and doc["next"]["command"]
    assert set(doc) >= {
        "target",
        "found",
        "daemon_family",
        "cleanup_class",
        "skip_reason",
        "proofs",
        "alive_because",
        "reuse",
        "cleanup",
        "history",
        "next",
    }
    assert explain(box, "zzzz-no-such", ok=1)["found"] is False
    proc = box.cli("explain", "../../etc", "--json")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    human = box.cli("explain", str(orphan.pid))
    assert human.returncode == 0 and "next: synclease auth doctor --reset" in human.stdout
    # Proofs read as key=value words for people, never as Python reprs.
    assert "proof lease: present=yes state=expired renewed_at=" in human.stdout
    assert "proof mismatches: none" in human.stdout
    assert "{" not in human.stdout and "True" not in human.stdout
    for proc in (legacy, web, dashboardish):
        assert proc.poll() is None  # explain only reads
