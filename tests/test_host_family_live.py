"""A family a host declares, live (ADR 0019): ``examples/hostcli`` declares ``hostcli-watch`` on
9520-9529 and runs its daemon through synclease's lifecycle (``hostcli watch`` → ``synclease.serve``);
``synclease auth doctor --family hostcli-watch`` (told of the family by ``SYNCLEASE_FAMILIES``) judges
and sweeps it with the same table as a sync daemon. Real processes, real loopback ports, real PIDs."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from synclease.core.clock import from_wire
from tests.conftest import Sandbox, get_health, port_free, wait_for
from tests.test_reaper_live import VALIDATOR

pytestmark = pytest.mark.live

HOSTCLI_DIR = Path(__file__).resolve().parent.parent / "examples" / "hostcli"
HOSTCLI = HOSTCLI_DIR / "hostcli.py"
FAMILY = "hostcli-watch"
WATCH_PORTS = range(9520, 9530)
#: How the synclease CLI learns of hostcli's family.
FAMILY_ENV = {"SYNCLEASE_FAMILIES": "hostcli_families", "PYTHONPATH": str(HOSTCLI_DIR)}
#: A stale watcher: serves health, never renews its 1 s lease, refuses the polite retire.
STALE = {"SYNCLEASE_FAILPOINTS": "stall_heartbeat,ignore_retire", "SYNCLEASE_LEASE_TTL_SECONDS": "1"}


def watch_leases(box: Sandbox) -> list[dict[str, Any]]:
    out = []
    for path in sorted((box.root / "leases" / FAMILY).glob("*.json")):
        with contextlib.suppress(ValueError, OSError):
            out.append(json.loads(path.read_text()))
    return out


def start_watcher(box: Sandbox, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return box.popen_logged(
        [sys.executable, str(HOSTCLI), "watch", *args], "watch", {**FAMILY_ENV, **(env or {})}
    )


def serving(box: Sandbox, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Wait until ``proc`` holds a lease of the family and answers health on that port as itself."""

    def ready() -> dict[str, Any] | None:
        if proc.poll() is not None:
            raise AssertionError(f"watcher exited {proc.returncode}: {proc.log_path.read_text()}")  # type: ignore[attr-defined]
        for lease in watch_leases(box):
            if lease.get("pid") == proc.pid:
                health = get_health(lease["port"])
                if health is not None and health.get("pid") == proc.pid:
                    return lease
        return None

    lease: dict[str, Any] = wait_for(ready, what="the watcher serving")
    return lease


def doctor(box: Sandbox, *args: str) -> dict[str, Any]:
    proc = box.cli("auth", "doctor", "--family", FAMILY, *args, "--json", env=FAMILY_ENV)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    doc: dict[str, Any] = json.loads(proc.stdout)
    errors = list(VALIDATOR.iter_errors(doc))
    assert not errors, errors[0].message
    for lease in watch_leases(box):
        assert lease["token"] not in proc.stdout
    return doc


def expired(lease: dict[str, Any]) -> bool:
    return datetime.now(UTC) > from_wire(lease["renewed_at"]) + timedelta(seconds=lease["ttl_seconds"])


@pytest.fixture
def watch_ports_free() -> None:
    if not all(port_free(port) for port in WATCH_PORTS):
        pytest.skip(f"hostcli's ports {WATCH_PORTS.start}-{WATCH_PORTS.stop - 1} are in use on this host")


@pytest.mark.usefixtures("watch_ports_free")
def test_a_host_family_daemon_is_governed_with_the_same_table(sandbox: Sandbox) -> None:
    stale = start_watcher(sandbox, env=STALE)
    stale_lease = serving(sandbox, stale)
    assert stale_lease["family"] == FAMILY and stale_lease["port"] in WATCH_PORTS
    assert (sandbox.root / f"{FAMILY}.singleton.json").exists()

    first = doctor(sandbox)
    assert first["daemon"]["pid"] == stale.pid
    assert (first["daemon"]["cleanup_class"], first["daemon"]["skip_reason"]) == (
        "never_touch",
        "recorded_singleton",
    )
    assert first["daemon"]["daemon_family"] == FAMILY and first["scan"]["ports_scanned"] == len(WATCH_PORTS)
    # The sync family's doctor neither sees nor touches it: other ports, other leases.
    sync_doc = sandbox.cli_json("auth", "doctor")
    assert stale.pid not in {r["pid"] for r in [*sync_doc["orphans"], *sync_doc["ignored"]]}

    fresh = start_watcher(sandbox, "--replace")
    serving(sandbox, fresh)
    wait_for(
        lambda: all(expired(lease) for lease in watch_leases(sandbox) if lease["pid"] == stale.pid),
        what="the stalled watcher's lease expiring",
    )
    judged = doctor(sandbox)
    assert judged["daemon"]["pid"] == fresh.pid
    orphans = {o["pid"]: o for o in judged["orphans"]}
    assert (orphans[stale.pid]["cleanup_class"], orphans[stale.pid]["skip_reason"]) == ("safe_auto", None)

    reset = doctor(sandbox, "--reset")
    swept = reset["reset_result"]["swept"]
    assert [s["pid"] for s in swept] == [stale.pid]
    assert stale.wait(timeout=30) is not None
    assert fresh.poll() is None  # the live singleton is never touched
    assert reset["daemon"]["pid"] == fresh.pid and not reset["orphans"]
    assert [lease["pid"] for lease in watch_leases(sandbox)] == [fresh.pid]

    fresh.send_signal(signal.SIGTERM)  # a polite end: lease, record and port released
    assert fresh.wait(timeout=30) == 0
    assert watch_leases(sandbox) == []
    assert not (sandbox.root / f"{FAMILY}.singleton.json").exists()


@pytest.mark.usefixtures("watch_ports_free")
def test_a_second_watcher_refuses_while_a_healthy_one_serves(sandbox: Sandbox) -> None:
    first = start_watcher(sandbox)
    serving(sandbox, first)
    second = start_watcher(sandbox)
    assert second.wait(timeout=30) == 3, second.log_path.read_text()  # type: ignore[attr-defined]
    assert "a healthy hostcli-watch daemon already serves this root" in second.log_path.read_text()  # type: ignore[attr-defined]
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0


IDLE_SCRIPT = """
import synclease
family = synclease.declare_family("test-idle", range(9530, 9532), idle_retirement_seconds=0.5)
raise SystemExit(synclease.serve(family, version="0.1"))
"""


def test_a_host_family_daemon_retires_by_itself_when_idle(sandbox: Sandbox) -> None:
    if not all(port_free(port) for port in (9530, 9531)):
        pytest.skip("ports 9530-9531 are in use on this host")
    proc = sandbox.popen(
        [sys.executable, "-c", IDLE_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    leases = sandbox.root / "leases" / "test-idle"
    seen = wait_for(lambda: proc.poll() is not None or list(leases.glob("*.json")), what="its lease")
    assert seen is not True, proc.stdout.read() if proc.stdout else ""  # it served before it left
    assert proc.wait(timeout=30) == 0, proc.stdout.read() if proc.stdout else ""
    assert not any(leases.glob("*.json"))  # it dropped its lease on the way out
    assert not (sandbox.root / "test-idle.singleton.json").exists()


@pytest.mark.usefixtures("watch_ports_free")
def test_protocol_check_passes_on_the_host_familys_daemon(sandbox: Sandbox) -> None:
    """``synclease protocol check`` (told of the family by ``SYNCLEASE_FAMILIES``) judges hostcli's
    watcher clause by clause, retirement included, like a sync daemon (issue 21)."""
    watcher = start_watcher(sandbox)
    lease = serving(sandbox, watcher)
    proc = sandbox.cli(
        "protocol",
        "check",
        "--root",
        str(sandbox.root),
        "--family",
        FAMILY,
        "--retire",
        "--json",
        env=FAMILY_ENV,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["target"]["family"] == FAMILY and doc["target"]["pid"] == watcher.pid
    status = {c["id"]: c["status"] for c in doc["clauses"]}
    assert status["L1.CONTROL.RETIRE"] == "pass" and status["L1.OS.AGREES"] == "pass"
    assert lease["token"] not in proc.stdout
    assert watcher.wait(timeout=30) == 0  # retired by the check's request, cleanly
    assert watch_leases(sandbox) == []
