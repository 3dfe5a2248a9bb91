"""Live proof of the reaper and ``synclease auth doctor [--json] [--reset [--force]]`` (issue 4).

Every case builds its pile from real processes on real loopback ports inside the test's own port block:
stale daemons made with the failpoints (``stall_heartbeat``, ``ignore_retire``, ``ignore_sigterm`` and a
short lease TTL), daemons of another root, legacy sync-shaped listeners, stopped processes, third-party
servers and hand-written lease files. Every doctor document is validated against
``protocol/doctor-v2.schema.json`` and checked for lease tokens. Waiting is always polling a condition.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
from jsonschema import Draft202012Validator

from synclease.adapters import http_client as httpc
from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.adapters.signals import RealOps
from synclease.core.clock import from_wire
from synclease.core.escalate import CleanupPath, Target
from synclease.core.fleet import CleanupClass
from synclease.core.lease import LeaseRecord
from synclease.services.survey import survey
from synclease.services.sweep import sweep
from tests import neighbours
from tests.conftest import (
    Sandbox,
    get_health,
    hold_a_batch,
    listening_pids,
    login,
    pid_alive,
    port_free,
    wait_for,
)
from tests.fakes import RecordingOps
from tests.receiver import Receiver

pytestmark = pytest.mark.live

SCHEMA_PATH = Path(__file__).parent.parent / "protocol" / "doctor-v2.schema.json"
VALIDATOR = Draft202012Validator(
    json.loads(SCHEMA_PATH.read_text()), format_checker=Draft202012Validator.FORMAT_CHECKER
)
RESET_FORCE = "synclease auth doctor --reset --force"

#: A stale daemon: serves health, never renews its 1 s lease, refuses the polite retire.
STALE = {"SYNCLEASE_FAILPOINTS": "stall_heartbeat,ignore_retire", "SYNCLEASE_LEASE_TTL_SECONDS": "1"}

IDLE_PROCESS = "import signal\nwhile True:\n    signal.pause()\n"

SYNC_SHAPED = {"daemon_family": "sync", "protocol_version": 1, "package_version": "3.2.2"}
LEGACY_SHAPED = {"protocol_version": 1, "package_version": "3.2.3"}


#: How long to poll for a free block before skipping (another run on this host may hold them).
# --- helpers --------------------------------------------------------------------------------------


def lease_tokens(*boxes: Sandbox) -> set[str]:
    return {lease["token"] for box in boxes for lease in box.leases() if isinstance(lease.get("token"), str)}


def doctor(
    box: Sandbox,
    *args: str,
    ok: tuple[int, ...] = (0,),
    others: tuple[Sandbox, ...] = (),
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``synclease auth doctor [args] --json`` in ``box``: exit code checked, schema-valid, no token."""
    tokens = lease_tokens(box, *others)
    proc = box.cli("auth", "doctor", *args, "--json", env=env)
    tokens |= lease_tokens(box, *others)
    assert proc.returncode in ok, f"exit {proc.returncode}: {proc.stderr} {proc.stdout[-3000:]}"
    doc = json.loads(proc.stdout)
    errors = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    for token in tokens:
        assert token not in proc.stdout and token not in proc.stderr
    return doc


def spawn(box: Sandbox, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``python -m synclease.daemons.sync`` as a direct child of the test, its output in a file beside the root."""
    return box.popen_logged(
        [sys.executable, "-m", "synclease.daemons.sync", *args], f"{box.root.name}-daemon", env
    )


def serving(box: Sandbox, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Wait until ``proc`` has written its lease in ``box`` and answers health on that port."""

    def ready() -> dict[str, Any] | None:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited {proc.returncode}: {proc.log_path.read_text()}")  # type: ignore[attr-defined]
        for lease in box.leases():
            if lease.get("pid") == proc.pid:
                health = get_health(lease["port"])
                if health is not None and health.get("pid") == proc.pid:
                    return lease
        return None

    lease: dict[str, Any] = wait_for(ready)
    return lease


def expired(lease: dict[str, Any]) -> bool:
    return datetime.now(UTC) > from_wire(lease["renewed_at"]) + timedelta(seconds=lease["ttl_seconds"])


def wait_expired(box: Sandbox, *leases: dict[str, Any]) -> None:
    """Poll the lease files until every given lease has expired (stalled holders never renew)."""
    ids = {lease["instance_id"] for lease in leases}

    def all_expired() -> bool:
        current = {lease["instance_id"]: lease for lease in box.leases()}
        return all(i in current and expired(current[i]) for i in ids)

    wait_for(all_expired)


def stale_daemon(box: Sandbox, *args: str, env: dict[str, str] | None = None) -> tuple[Any, dict[str, Any]]:
    proc = spawn(box, *args, env={**STALE, **(env or {})})
    return proc, serving(box, proc)


def listener(
    box: Sandbox, kind: str, port: int, body: Any = None, ctype: str = ""
) -> subprocess.Popen[bytes]:
    """A neighbour process (:mod:`tests.neighbours`) on ``port``; a signal ends it (and is logged)."""
    assert port_free(port), f"port {port} is taken"
    log = box.root.parent / f"signals-{port}.log"
    proc = box.popen(
        neighbours.argv(kind, port, log, body, ctype), stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"listener on {port} exited {proc.returncode}")
        return listening_pids(range(port, port + 1)).get(port) == proc.pid

    wait_for(up)
    return proc


def http_listener(box: Sandbox, port: int, body: Any, ctype: str = "application/json") -> Any:
    proc = listener(box, "json", port, body, ctype)
    wait_for(lambda: httpc.get_json(port, "/api/health", 1.0).status == 200)
    return proc


def gone(pid: int, port: int) -> bool:
    return not pid_alive(pid) and listening_pids(range(port, port + 1)).get(port) != pid


def by_pid(items: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {item["pid"]: item for item in items}


def finding_ids(doc: dict[str, Any]) -> dict[str, str]:
    return {f["id"]: f["remediation"]["command"] for f in doc["findings"]}


def store_of(box: Sandbox) -> LeaseStore:
    return LeaseStore(DaemonRoot(box.root.resolve()).prepare())


def expired_lease(store: LeaseStore, *, pid: int, start: float, port: int, ttl: float = 10.0) -> LeaseRecord:
    """A lease of ``store``'s root naming ``pid``, last renewed a minute ago (expired for ``ttl`` < 60)."""
    then = datetime.now(UTC) - timedelta(seconds=60)
    return LeaseRecord(
        family="sync",
        instance_id=secrets.token_hex(8),
        scope_id=store.root.scope_id,
        daemon_root=str(store.root.path),
        pid=pid,
        process_start_time=start,
        port=port,
        package_version="3.2.2",
        protocol_version=1,
        acquired_at=then,
        renewed_at=then,
        ttl_seconds=ttl,
        state="serving",
        token=secrets.token_urlsafe(32),
    )


def write_lease(box: Sandbox, *, pid: int, start: float, port: int, ttl: float = 10.0) -> str:
    """A lease record written with the codec, as a crashed holder would have left it."""
    store = store_of(box)
    lease = expired_lease(store, pid=pid, start=start, port=port, ttl=ttl)
    store.write(lease)
    return lease.instance_id


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """SIGSTOP ``pid`` for the block; SIGCONT on the way out, whatever happened (SIGKILL works anyway)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def lease_state(box: Sandbox, instance_id: str) -> str | None:
    return next((x["state"] for x in box.leases() if x["instance_id"] == instance_id), None)


# --- stale daemons of old versions ----------------------------------------------------------------


def version_pile(box: Sandbox, *args: str) -> list[tuple[Any, dict[str, Any]]]:
    """Three stale same-scope daemons, 3.2.2 → 3.2.3 → 3.2.4, their leases expired."""
    pile = [stale_daemon(box, *args, env={"SYNCLEASE_VERSION": v}) for v in ("3.2.2", "3.2.3", "3.2.4")]
    wait_expired(box, *(lease for _, lease in pile))
    return pile


def test_stale_version_pile_is_safe_auto_and_sync_start_leaves_one_daemon(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    box = sandbox_factory(size=8)
    pile = version_pile(box, "--replace")
    (_, l322), (_, l323), (p324, _) = pile

    doc = doctor(box)
    assert doc["daemon"]["pid"] == p324.pid and doc["daemon"]["package_version"] == "3.2.4"
    assert doc["daemon"]["lease_state"] == "expired" and doc["daemon"]["is_recorded_singleton"] is True
    orphans = by_pid(doc["orphans"])
    assert set(orphans) == {l322["pid"], l323["pid"]}
    for lease in (l322, l323):
        record = orphans[lease["pid"]]
        assert record["cleanup_class"] == "safe_auto" and record["skip_reason"] is None
        assert (record["port"], record["instance_id"]) == (lease["port"], lease["instance_id"])
        assert record["package_version"] == lease["package_version"]
        assert record["lease_state"] == "expired" and record["mismatches"] == []
        assert record["self_report_matches_lease"] and record["self_report_matches_listener"]
    findings = finding_ids(doc)
    assert findings["orphans_safe_auto"] == "synclease auth doctor --reset"
    assert findings["singleton_stalled"] == "synclease sync start"
    assert doc["ignored"] == [] and {x["state"] for x in doc["leases"]} == {"expired"}

    started = box.cli_json("sync", "start", env={"SYNCLEASE_VERSION": "3.2.5"})
    assert started["reused"] is False and started["package_version"] == "3.2.5"
    # The startup reaper ran before `sync start` returned: exactly one daemon is left.
    for proc, lease in pile:
        assert gone(proc.pid, lease["port"])
        assert "retired reason=signal" in proc.log_path.read_text()
    assert box.listeners() == {started["port"]: started["pid"]}
    assert [x["instance_id"] for x in box.leases()] == [started["instance_id"]]
    after = doctor(box)
    assert after["daemon"]["pid"] == started["pid"] and after["daemon"]["lease_state"] == "live"
    assert after["orphans"] == [] and after["leases"][0]["state"] == "live"
    assert not {"orphans_safe_auto", "singleton_stalled"} & set(finding_ids(after))


@pytest.mark.parametrize("mode", ["--replace", "--managed"])
def test_reset_sweeps_the_stale_version_pile(sandbox_factory: Callable[..., Sandbox], mode: str) -> None:
    """``--replace``: the last one is the (stalled) recorded singleton, which --reset never touches.
    ``--managed``: nobody is recorded, all three are orphans."""
    box = sandbox_factory(size=8)
    pile = version_pile(box, mode)
    orphans = pile[:2] if mode == "--replace" else pile

    doc = doctor(box, "--reset")
    result = doc["reset_result"]
    assert result["failed"] == [] and result["skipped"] == [] and result["leases_removed"] == []
    swept = by_pid(result["swept"])
    assert set(swept) == {proc.pid for proc, _ in orphans}
    for proc, lease in orphans:
        item = swept[proc.pid]
        assert (item["port"], item["instance_id"]) == (lease["port"], lease["instance_id"])
        assert item["package_version"] == lease["package_version"]
        assert item["cleanup_path"] == "terminate"  # they refuse the polite retire
        assert item["reason"] == "expired_lease"
        assert gone(proc.pid, lease["port"])
    assert doc["orphans"] == []  # the document after the reset is a fresh survey
    if mode == "--replace":
        singleton, lease = pile[2]
        assert pid_alive(singleton.pid) and get_health(lease["port"]) is not None
        assert doc["daemon"]["pid"] == singleton.pid
        assert finding_ids(doc)["singleton_stalled"] == "synclease sync start"
        assert [x["instance_id"] for x in box.leases()] == [lease["instance_id"]]
    else:
        assert doc["daemon"] is None and "no_daemon" in finding_ids(doc)
        assert box.leases() == [] and box.listeners() == {}


@pytest.mark.parametrize("signaller", ["pidfd", "no_pidfd"])
def test_sigterm_ignoring_daemon_is_swept_via_kill(sandbox: Sandbox, signaller: str) -> None:
    """Both signalling variants of the process adapter: through a pidfd, and re-check then kill."""
    proc, lease = stale_daemon(
        sandbox, "--managed", env={"SYNCLEASE_FAILPOINTS": "ignore_retire,ignore_sigterm,stall_heartbeat"}
    )
    wait_expired(sandbox, lease)
    assert [o["cleanup_class"] for o in doctor(sandbox)["orphans"]] == ["safe_auto"]

    variant = {"SYNCLEASE_FAILPOINTS": "no_pidfd"} if signaller == "no_pidfd" else None
    result = doctor(sandbox, "--reset", env=variant)["reset_result"]
    assert result["failed"] == []
    assert [(s["pid"], s["port"], s["cleanup_path"]) for s in result["swept"]] == [
        (proc.pid, lease["port"], "kill")
    ]
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert gone(proc.pid, lease["port"])
    assert sandbox.leases() == []  # a killed daemon cannot drop its lease: the sweep did, once provably dead


# --- operator_required: cross_root, no_lease, unresponsive, lease_live ----------------------------


def test_a_live_daemon_of_another_root_is_judged_by_its_own_roots_lease(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    """Not that root's singleton, lease live there: lease_live like one of ours; --force retires it
    politely with that root's lease token (issue 20: roots are judged by their own records)."""
    ours, theirs = sandbox_factory("ours"), sandbox_factory("theirs")
    port = ours.ports[-1]
    proc = spawn(
        theirs, "--managed", env={"SYNCLEASE_PORT_RANGE": f"{port}-{port}", "SYNCLEASE_PORT_HINT": str(port)}
    )
    lease = serving(theirs, proc)
    assert lease["port"] == port

    record = doctor(ours, others=(theirs,))["orphans"]
    assert len(record) == 1
    assert record[0]["pid"] == proc.pid and record[0]["port"] == port
    assert record[0]["cleanup_class"] == "operator_required" and record[0]["skip_reason"] == "lease_live"
    assert record[0]["scope_id"] == lease["scope_id"] != store_of(ours).root.scope_id
    assert record[0]["lease_present"] is True and record[0]["other_root"] == str(theirs.root.resolve())

    kept = doctor(ours, "--reset", others=(theirs,))
    assert kept["reset_result"]["swept"] == [] and kept["reset_result"]["failed"] == []
    assert [(s["pid"], s["skip_reason"]) for s in kept["reset_result"]["skipped"]] == [
        (proc.pid, "lease_live")
    ]
    assert finding_ids(kept)["orphans_operator_required"] == RESET_FORCE
    assert pid_alive(proc.pid) and get_health(port) is not None

    forced = doctor(ours, "--reset", "--force", others=(theirs,))["reset_result"]
    assert [(s["pid"], s["reason"], s["cleanup_path"]) for s in forced["swept"]] == [
        (proc.pid, "lease_live", "http_retire")
    ]
    assert proc.wait(timeout=10) == 0 and gone(proc.pid, port)
    assert theirs.leases() == []  # it retired gracefully in its own root


@pytest.mark.parametrize("shape", [SYNC_SHAPED, LEGACY_SHAPED], ids=["sync_family", "legacy_versions_only"])
def test_sync_shaped_listener_without_a_lease_is_no_lease(sandbox: Sandbox, shape: dict[str, Any]) -> None:
    port = sandbox.ports[-1]
    proc = http_listener(sandbox, port, shape)

    orphans = doctor(sandbox)["orphans"]
    assert [(o["pid"], o["port"], o["cleanup_class"], o["skip_reason"]) for o in orphans] == [
        (proc.pid, port, "operator_required", "no_lease")
    ]
    assert orphans[0]["package_version"] == shape["package_version"]
    assert orphans[0]["lease_present"] is False and orphans[0]["lease_state"] == "missing"

    kept = doctor(sandbox, "--reset")["reset_result"]
    assert kept["swept"] == [] and [s["skip_reason"] for s in kept["skipped"]] == ["no_lease"]
    assert proc.poll() is None

    forced = doctor(sandbox, "--reset", "--force")["reset_result"]
    assert [(s["pid"], s["reason"], s["cleanup_path"]) for s in forced["swept"]] == [
        (proc.pid, "no_lease", "terminate")
    ]
    assert proc.wait(timeout=10) == -signal.SIGTERM and gone(proc.pid, port)


def test_stopped_daemon_is_unresponsive_and_only_force_kills_it(sandbox: Sandbox) -> None:
    proc = spawn(sandbox, "--managed")
    lease = serving(sandbox, proc)
    with stopped(proc.pid):
        orphans = doctor(sandbox)["orphans"]
        assert [(o["pid"], o["cleanup_class"], o["skip_reason"]) for o in orphans] == [
            (proc.pid, "operator_required", "unresponsive")
        ]
        assert orphans[0]["lease_present"] is True and orphans[0]["health_error"] is not None

        kept = doctor(sandbox, "--reset")["reset_result"]
        assert kept["swept"] == [] and [s["skip_reason"] for s in kept["skipped"]] == ["unresponsive"]
        assert psutil.Process(proc.pid).status() == psutil.STATUS_STOPPED

        forced = doctor(sandbox, "--reset", "--force")["reset_result"]
        assert [(s["pid"], s["reason"], s["cleanup_path"]) for s in forced["swept"]] == [
            (proc.pid, "unresponsive", "kill")  # a stopped process cannot act on SIGTERM
        ]
        assert proc.wait(timeout=10) == -signal.SIGKILL and gone(proc.pid, lease["port"])
    assert sandbox.leases() == []


def test_superseded_daemon_with_a_live_lease_is_left_to_retire_by_itself(
    sandbox: Sandbox, rx: Receiver
) -> None:
    login(sandbox, rx)
    old = hold_a_batch(sandbox, rx, env={"SYNCLEASE_VERSION": "3.2.2"})["daemon"]
    old["instance_id"] = sandbox.leases()[0]["instance_id"]
    new = sandbox.cli_json("sync", "start", env={"SYNCLEASE_VERSION": "3.2.4"})
    assert new["reused"] is False and new["pid"] != old["pid"]
    # Superseded while busy: it drains, still renewing its lease, and the startup reaper left it.
    wait_for(lambda: lease_state(sandbox, old["instance_id"]) == "draining")

    doc = doctor(sandbox)
    reset = doctor(sandbox, "--reset")
    assert rx.accepted_total == 0, "the upload ended before the doctor ran: nothing was proven"
    assert doc["daemon"]["pid"] == new["pid"]
    assert [(o["pid"], o["cleanup_class"], o["skip_reason"], o["lease_state"]) for o in doc["orphans"]] == [
        (old["pid"], "operator_required", "lease_live", "live")
    ]
    result = reset["reset_result"]
    assert result["swept"] == [] and result["failed"] == []
    assert [(s["pid"], s["skip_reason"]) for s in result["skipped"]] == [(old["pid"], "lease_live")]
    assert pid_alive(old["pid"]) and get_health(old["port"]) is not None

    rx.release()
    assert rx.wait_for(lambda: rx.accepted_total >= 1)
    wait_for(lambda: not pid_alive(old["pid"]), timeout=20)
    assert "retired reason=" in sandbox.logs()
    after = doctor(sandbox)
    assert after["orphans"] == [] and after["daemon"]["pid"] == new["pid"]


# --- never_touch ---------------------------------------------------------------------------------


def test_third_party_listeners_survive_reset_and_force(sandbox: Sandbox) -> None:
    web = http_listener(sandbox, sandbox.ports[-1], "<html>hello</html>", "text/html")
    api = http_listener(sandbox, sandbox.ports[-2], {"status": "ok", "version": "9.9"})
    dashboard = http_listener(
        sandbox,
        sandbox.ports[-3],
        {"daemon_family": "dashboard", "protocol_version": 1, "package_version": "3.2.4"},
    )
    raw = listener(sandbox, "silent", sandbox.ports[-4])
    expected = {
        web.pid: "third_party",
        api.pid: "third_party",
        dashboard.pid: "other_family",
        raw.pid: "third_party",
    }

    # A listener nothing claims and that speaks no family is third_party whoever holds it: its owner
    # is not looked up (no process walk, ADR 0014); one that speaks a family is.
    shown = {
        sandbox.ports[-1]: (None, "third_party"),
        sandbox.ports[-2]: (None, "third_party"),
        sandbox.ports[-3]: (dashboard.pid, "other_family"),
        sandbox.ports[-4]: (None, "third_party"),
    }

    doc = doctor(sandbox)
    assert doc["orphans"] == []
    assert {i["port"]: (i["pid"], i["skip_reason"]) for i in doc["ignored"]} == shown
    for args in (("--reset",), ("--reset", "--force")):
        result = doctor(sandbox, *args)["reset_result"]
        assert result["swept"] == [] and result["failed"] == []
        assert {s["port"]: (s["cleanup_class"], s["pid"], s["skip_reason"]) for s in result["skipped"]} == {
            port: ("never_touch", pid, reason) for port, (pid, reason) in shown.items()
        }
        assert all(proc.poll() is None for proc in (web, api, dashboard, raw))
        assert set(sandbox.listeners().values()) == set(expected)


# --- lease records nobody answers for -------------------------------------------------------------


def test_stale_leases_are_removed_and_nobody_is_signalled(sandbox: Sandbox) -> None:
    bystander = sandbox.popen([sys.executable, "-c", IDLE_PROCESS], stdin=subprocess.DEVNULL)
    real_start = psutil.Process(bystander.pid).create_time()
    reused = write_lease(sandbox, pid=bystander.pid, start=real_start - 1000.0, port=sandbox.ports[-1])
    dead_proc = sandbox.popen([sys.executable, "-c", "pass"])
    dead_start = psutil.Process(dead_proc.pid).create_time()  # running or a zombie: not reaped yet
    assert dead_proc.wait(timeout=10) == 0
    dead = write_lease(sandbox, pid=dead_proc.pid, start=dead_start, port=sandbox.ports[-2])
    hostile = store_of(sandbox).root.lease_path("hostile0badc0de")
    hostile.write_bytes(b'{"schema": "synclease.lease", "schema_version": 1, "pid": ')
    hostile.chmod(0o600)

    doc = doctor(sandbox)
    rows = {row["instance_id"]: row for row in doc["leases"]}
    assert (rows[reused]["holder"], rows[reused]["stale"]) == ("pid_reused", True)
    assert (rows[dead]["holder"], rows[dead]["stale"]) == ("dead", True)
    assert rows["hostile0badc0de"]["state"] == "unreadable"
    findings = finding_ids(doc)
    assert findings["stale_leases"] == "synclease auth doctor --reset"
    assert findings["unreadable_lease"].startswith("rm -- ")
    assert doc["orphans"] == [] and doc["ignored"] == []

    for args in (("--reset",), ("--reset", "--force")):
        result = doctor(sandbox, *args)["reset_result"]
        assert result["swept"] == [] and result["failed"] == []
        if args == ("--reset",):
            assert {(x["instance_id"], x["pid"], x["reason"]) for x in result["leases_removed"]} == {
                (reused, bystander.pid, "pid_reused"),
                (dead, dead_proc.pid, "holder_dead"),
            }
        else:
            assert result["leases_removed"] == []
        assert bystander.poll() is None  # the PID's new owner was never signalled
        assert [p.name for p in sorted(store_of(sandbox).root.leases_dir().glob("*.json"))] == [hostile.name]
    assert hostile.read_bytes().startswith(b'{"schema"')  # never trusted, never deleted by the reaper


# --- failures are data ----------------------------------------------------------------------------


def test_process_that_survives_everything_is_failed(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    proc, lease = stale_daemon(sandbox, "--managed")
    other, other_lease = stale_daemon(sandbox, "--managed")
    wait_expired(sandbox, lease, other_lease)

    # The executor itself, in-process, against the real daemons.
    store = store_of(sandbox)
    ops = RecordingOps(refuse_pid=proc.pid)
    result = sweep(
        survey(store, SYSTEM_CLOCK, sandbox.ports), store, SYSTEM_CLOCK, {CleanupClass.SAFE_AUTO}, ops=ops
    )
    assert [f.to_json() for f in result.failed] == [
        {
            "pid": proc.pid,
            "port": lease["port"],
            "instance_id": lease["instance_id"],
            "failure_reason": "survived_kill",
        }
    ]
    assert [(s.pid, s.cleanup_path.value) for s in result.swept] == [(other.pid, "terminate")]
    assert ops.refused == [CleanupPath.TERMINATE, CleanupPath.KILL]
    assert proc.poll() is None and get_health(lease["port"]) is not None
    assert [x["instance_id"] for x in sandbox.leases()] == [lease["instance_id"]]  # its holder lives

    # The command: failed[] in the document and exit code 1.
    for name, value in sandbox.env.items():
        if name.startswith("SYNCLEASE_"):
            monkeypatch.setenv(name, value)
    from synclease.cli.main import main
    from synclease.services import reset

    real_sweep = reset.sweep
    monkeypatch.setattr(
        reset,
        "sweep",
        lambda found, st, clock, classes, **kw: real_sweep(found, st, clock, classes, **{**kw, "ops": ops}),
    )
    capsys.readouterr()
    assert main(["auth", "doctor", "--reset", "--json"]) == 1
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert not list(VALIDATOR.iter_errors(doc))
    assert lease["token"] not in out
    failed = doc["reset_result"]["failed"]
    assert [(f["pid"], f["failure_reason"]) for f in failed] == [(proc.pid, "survived_kill")]
    assert proc.poll() is None
    proc.kill()  # cleaned up by PID, by its parent
    assert proc.wait(timeout=10) == -signal.SIGKILL


# --- the whole matrix: --reset spares operator_required, --force cleans them, never_touch survive --


def test_reset_spares_operator_required_force_cleans_them_never_touch_survives_both(
    sandbox_factory: Callable[..., Sandbox], rx: Receiver
) -> None:
    box = sandbox_factory("ours", size=8)
    theirs = sandbox_factory("theirs")
    top = list(reversed(box.ports))
    web = http_listener(box, top[0], "<html>hello</html>", "text/html")
    raw = listener(box, "silent", top[1])
    legacy = http_listener(box, top[2], LEGACY_SHAPED)
    foreign = spawn(
        theirs, env={"SYNCLEASE_PORT_RANGE": f"{top[3]}-{top[3]}", "SYNCLEASE_PORT_HINT": str(top[3])}
    )
    serving(theirs, foreign)
    wedged = spawn(box, "--managed")
    serving(box, wedged)

    login(box, rx)
    with stopped(wedged.pid):
        old = hold_a_batch(box, rx, env={"SYNCLEASE_VERSION": "3.2.2"})["daemon"]
        old["instance_id"] = next(x["instance_id"] for x in box.leases() if x["pid"] == old["pid"])
        new = box.cli_json("sync", "start", env={"SYNCLEASE_VERSION": "3.2.4"})
        wait_for(lambda: lease_state(box, old["instance_id"]) == "draining")
        stale, stale_lease = stale_daemon(box, "--managed")
        wait_expired(box, stale_lease)

        # theirs's live singleton is never touched, even with --force (issue 20)
        never = {web.pid: "third_party", raw.pid: "third_party", foreign.pid: "recorded_singleton"}
        manual = {
            legacy.pid: "no_lease",
            wedged.pid: "unresponsive",
            old["pid"]: "lease_live",
        }
        doc = doctor(box, others=(theirs,))
        assert {o["pid"]: o["skip_reason"] for o in doc["orphans"]} == {**manual, stale.pid: None}
        unowned = {top[0]: (None, "third_party"), top[1]: (None, "third_party")}  # no walk for them
        assert {i["port"]: (i["pid"], i["skip_reason"]) for i in doc["ignored"]} == {
            **unowned,
            top[3]: (foreign.pid, "recorded_singleton"),
        }
        assert doc["daemon"]["pid"] == new["pid"]

        kept = doctor(box, "--reset", others=(theirs,))["reset_result"]
        assert [(s["pid"], s["cleanup_path"]) for s in kept["swept"]] == [(stale.pid, "terminate")]
        assert {s["pid"]: s["skip_reason"] for s in kept["skipped"] if s["pid"] is not None} == {
            **manual,
            foreign.pid: "recorded_singleton",
        }
        assert {
            s["port"]: (s["pid"], s["skip_reason"]) for s in kept["skipped"] if s["pid"] is None
        } == unowned
        assert kept["failed"] == []
        assert all(pid_alive(pid) for pid in [*manual, *never, new["pid"]])
        human = box.cli("auth", "doctor", "--reset")
        assert human.returncode == 0 and RESET_FORCE in human.stdout
        assert not any(token in human.stdout for token in lease_tokens(box, theirs))
        assert all(pid_alive(pid) for pid in [*manual, *never, new["pid"]])

        forced = doctor(box, "--reset", "--force", others=(theirs,))["reset_result"]
        assert forced["failed"] == []
        swept = {s["pid"]: (s["reason"], s["cleanup_path"]) for s in forced["swept"]}
        assert {pid: reason for pid, (reason, _) in swept.items()} == manual
        assert swept[wedged.pid][1] == "kill" and swept[legacy.pid][1] == "terminate"
        assert {(s["port"], s["pid"]) for s in forced["skipped"]} == {
            (top[0], None),
            (top[1], None),
            (top[3], foreign.pid),
        }
        for pid in manual:
            wait_for(lambda pid=pid: not pid_alive(pid))
    assert all(proc.poll() is None for proc in (web, raw))
    assert get_health(new["port"]) is not None and pid_alive(new["pid"])
    assert set(box.listeners().values()) == {web.pid, raw.pid, foreign.pid, new["pid"]}
    final = doctor(box, others=(theirs,))
    assert final["orphans"] == [] and final["daemon"]["pid"] == new["pid"]


# --- races, read-only, usage ----------------------------------------------------------------------


def test_reset_while_sync_start_spawns_never_kills_the_new_daemon(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    """Each round: a stale orphan, then `sync start` (spawn + startup reaper) racing two `--reset`s, one
    with `--force`. The new daemon always survives; the orphan is swept once or twice (the reaper runs
    outside the singleton lock), but never reported as a failure or with a step it did not take."""
    sandbox = sandbox_factory(size=8)
    for round_ in range(3):
        orphan, lease = stale_daemon(sandbox, "--managed")
        wait_expired(sandbox, lease)
        with ThreadPoolExecutor(max_workers=3) as pool:
            resets = [
                pool.submit(doctor, sandbox, "--reset"),
                pool.submit(doctor, sandbox, "--reset", "--force"),
            ]
            started = pool.submit(sandbox.cli_json, "sync", "start").result(timeout=60)
            docs = [r.result(timeout=60) for r in resets]
        assert started["reused"] is False, f"round {round_}"
        health = get_health(started["port"])
        assert health is not None and health["pid"] == started["pid"]
        assert health["instance_id"] == started["instance_id"]
        for doc in docs:
            result = doc["reset_result"]
            assert result["failed"] == [], f"round {round_}: {result['failed']}"
            swept = [(s["pid"], s["cleanup_path"]) for s in result["swept"]]
            assert swept in ([], [(orphan.pid, "terminate")]), (round_, orphan.pid, started, result)
        assert gone(orphan.pid, lease["port"])
        assert sandbox.cli_json("sync", "stop")["stopped"] is True
        wait_for(lambda: not pid_alive(started["pid"]))


def test_two_sweeps_of_one_pile_report_only_what_each_did(sandbox: Sandbox) -> None:
    """`--reset` and a `sync start` reaper may sweep the same orphans at once. The one that finds a
    target already leaving must neither fail it (identity_changed) nor claim a path it did not take."""
    pile = [stale_daemon(sandbox, "--managed") for _ in range(3)]
    wait_expired(sandbox, *(lease for _, lease in pile))
    store = store_of(sandbox)
    first_view = survey(store, SYSTEM_CLOCK, sandbox.ports)
    second_view = survey(store, SYSTEM_CLOCK, sandbox.ports)

    def closed(target: Target) -> None:
        wait_for(lambda: listening_pids(range(target.port, target.port + 1)).get(target.port) != target.pid)

    # A second sweeper that always arrives just after the first one's SIGTERM: its polite step
    # returns only once the target has closed its port (it is then exiting).
    follower = RecordingOps(after_retire=closed)
    with ThreadPoolExecutor(max_workers=2) as pool:
        second = pool.submit(sweep, second_view, store, SYSTEM_CLOCK, {CleanupClass.SAFE_AUTO}, ops=follower)
        first = pool.submit(sweep, first_view, store, SYSTEM_CLOCK, {CleanupClass.SAFE_AUTO}, ops=RealOps())
        leader, late = first.result(timeout=60), second.result(timeout=60)
    assert sorted((s.pid, s.cleanup_path.value) for s in leader.swept) == sorted(
        (proc.pid, "terminate") for proc, _ in pile
    )
    assert leader.failed == [] and late.failed == []
    assert late.swept == [] and follower.signals == []
    for proc, lease in pile:
        assert gone(proc.pid, lease["port"])
    assert sandbox.leases() == []


def snapshot(box: Sandbox) -> dict[str, tuple[int, int, int]]:
    return {
        str(path.relative_to(box.root)): (st.st_mtime_ns, st.st_size, st.st_mode)
        for path in sorted(box.root.rglob("*"))
        for st in [path.lstat()]
    }


def test_doctor_without_reset_changes_nothing(sandbox_factory: Callable[..., Sandbox]) -> None:
    box = sandbox_factory(size=8)
    pile = version_pile(box, "--replace")
    wedged, wedged_lease = stale_daemon(box, "--managed")
    no_lease = http_listener(box, box.ports[-1], SYNC_SHAPED)
    raw = listener(box, "silent", box.ports[-2])
    bystander = box.popen([sys.executable, "-c", IDLE_PROCESS], stdin=subprocess.DEVNULL)
    write_lease(box, pid=bystander.pid, start=1.0, port=box.ports[-3])
    dead = box.popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=10)
    write_lease(box, pid=dead.pid, start=1.0, port=box.ports[-3])
    wait_expired(box, wedged_lease)
    procs = [p for p, _ in pile] + [wedged, no_lease, raw, bystander]

    with stopped(wedged.pid):
        before, listeners = snapshot(box), box.listeners()
        doc = doctor(box)
        human = box.cli("auth", "doctor")
        assert human.returncode == 0 and "orphans" in human.stdout
        assert snapshot(box) == before
        assert box.listeners() == listeners
        assert all(p.poll() is None for p in procs)
    assert len(doc["orphans"]) == 4 and sum(1 for x in doc["leases"] if x.get("stale")) == 2
    assert {f["id"] for f in doc["findings"]} >= {
        "orphans_safe_auto",
        "orphans_operator_required",
        "stale_leases",
    }


def test_doctor_never_creates_a_missing_root(sandbox: Sandbox) -> None:
    assert not sandbox.root.exists()
    doc = doctor(sandbox)
    assert not sandbox.root.exists()
    assert doc["daemon"] is None and doc["orphans"] == [] and doc["leases"] == []
    assert {f["id"] for f in doc["findings"]} == {"no_daemon", "no_session"}


def test_an_untrusted_session_file_is_reported_not_read(sandbox: Sandbox) -> None:
    store_of(sandbox)  # creates the root
    session = sandbox.root / "session.json"
    session.write_text('{"server_url": "https://sync.example.test", "token": "s3cret-session-token"')
    session.chmod(0o600)
    proc = sandbox.cli("auth", "doctor", "--json")
    assert proc.returncode == 0 and "s3cret-session-token" not in proc.stdout + proc.stderr
    doc = doctor(sandbox)
    assert set(doc["session"]) == {"problem"}
    assert finding_ids(doc)["session_unreadable"] == "synclease auth logout"


def test_force_without_reset_is_bad_usage(sandbox: Sandbox) -> None:
    for args in (("--force",), ("--force", "--json")):
        proc = sandbox.cli("auth", "doctor", *args)
        assert proc.returncode == 2
        assert proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "--force" in lines[0] and "Traceback" not in proc.stderr
