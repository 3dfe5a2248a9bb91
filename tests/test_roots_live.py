"""Every root on the machine, live (issue 20): real daemons in two real roots of this user.

From one root (``ours``), a daemon of another root (``theirs``) is judged by that root's records, read
read-only: its healthy singleton is ``never_touch`` even with ``--force`` (and the output names its
root); a stale daemon there whose self-report, lease and OS agree is ``safe_auto`` and ``--reset``
retires it, recorded in both ledgers; an unsafe record or disagreeing evidence there leaves it alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.core.record import replace
from tests.conftest import Sandbox, get_health, pid_alive, wait_for
from tests.test_reaper_live import doctor, gone, serving, spawn, stale_daemon, wait_expired

pytestmark = pytest.mark.live


def on(port: int) -> dict[str, str]:
    return {"SYNCLEASE_PORT_RANGE": f"{port}-{port}", "SYNCLEASE_PORT_HINT": str(port)}


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its mode and mtime: what a read-only look may not create or
    change (the live daemons' own writes aside: lease renewals and their temp files, their logs)."""
    out = {}
    for path in sorted(root.rglob("*")):
        st, name = path.lstat(), str(path.relative_to(root))
        if not path.name.startswith("."):
            out[name] = (st.st_mode, 0 if name.startswith(("leases", "logs")) else st.st_mtime_ns)
    return out


def ledger(box: Sandbox) -> list[dict[str, Any]]:
    path = box.root / "ledger" / "sync.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_stale_daemon_of_another_root_is_swept_while_its_healthy_singleton_serves_on(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    ours, theirs = sandbox_factory("ours"), sandbox_factory("theirs")
    ours.root.mkdir(mode=0o700)
    a, b = ours.ports[0], ours.ports[1]
    healthy = spawn(theirs, env=on(a))  # claims theirs's singleton
    healthy_lease = serving(theirs, healthy)
    stale, stale_lease = stale_daemon(theirs, "--managed", env=on(b))
    wait_expired(theirs, stale_lease)
    their_root = str(theirs.root.resolve())

    before = tree(theirs.root)
    look = doctor(ours, others=(theirs,))
    assert tree(theirs.root) == before  # read-only: nothing created, changed or locked there
    orphans = {o["pid"]: o for o in look["orphans"]}
    ignored = {i["pid"]: i for i in look["ignored"]}
    assert orphans[stale.pid]["cleanup_class"] == "safe_auto"
    assert orphans[stale.pid]["other_root"] == their_root and orphans[stale.pid]["lease_present"]
    assert ignored[healthy.pid]["skip_reason"] == "recorded_singleton"
    assert ignored[healthy.pid]["other_root"] == their_root and ignored[healthy.pid]["is_recorded_singleton"]
    assert look["daemon"] is None  # theirs's singleton is not ours
    human = ours.cli("auth", "doctor")
    assert f"pid {healthy.pid} belongs to root {their_root}: recorded_singleton" in human.stdout

    forced = doctor(ours, "--reset", "--force", others=(theirs,))["reset_result"]
    assert [(s["pid"], s["reason"], s["daemon_root"]) for s in forced["swept"]] == [
        (stale.pid, "expired_lease", their_root)
    ]
    assert forced["failed"] == [] and healthy.pid in {s["pid"] for s in forced["skipped"]}
    wait_for(lambda: gone(stale.pid, b))
    health = get_health(a)
    assert health is not None and (health["pid"], health["instance_id"]) == (
        healthy.pid,
        healthy_lease["instance_id"],
    )
    assert healthy.poll() is None

    mine = [e for e in ledger(ours) if e["event"] == "reaped"]
    assert [(e["pid"], e["evidence"]["daemon_root"]) for e in mine] == [(stale.pid, their_root)]
    assert mine[0]["by"]["command"] == "auth doctor reset"
    theirs_reaped = [e for e in ledger(theirs) if e["event"] == "reaped"]
    assert [(e["pid"], e["instance_id"]) for e in theirs_reaped] == [(stale.pid, stale_lease["instance_id"])]


def test_the_healthy_singleton_of_another_root_survives_reset_force(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    ours, theirs = sandbox_factory("ours"), sandbox_factory("theirs")
    ours.root.mkdir(mode=0o700)
    port = ours.ports[-1]
    healthy = spawn(theirs, env=on(port))
    lease = serving(theirs, healthy)
    for args in ((), ("--reset",), ("--reset", "--force")):
        doc = doctor(ours, *args, others=(theirs,))
        assert [(i["pid"], i["skip_reason"], i["other_root"]) for i in doc["ignored"]] == [
            (healthy.pid, "recorded_singleton", str(theirs.root.resolve()))
        ]
        if args:
            assert doc["reset_result"]["swept"] == [] and doc["reset_result"]["failed"] == []
    assert pid_alive(healthy.pid) and healthy.poll() is None
    health = get_health(port)
    assert health is not None and health["instance_id"] == lease["instance_id"]
    logs = "\n".join(p.read_text() for p in (theirs.root / "logs").glob("*.log"))
    assert "retiring" not in logs


def test_an_unsafe_record_or_disagreeing_evidence_in_another_root_leaves_its_daemon_alone(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    ours, theirs = sandbox_factory("ours"), sandbox_factory("theirs")
    ours.root.mkdir(mode=0o700)
    stale, stale_lease = stale_daemon(theirs, "--managed", env=on(ours.ports[0]))
    wait_expired(theirs, stale_lease)
    store = LeaseStore(DaemonRoot(theirs.root.resolve()))
    entry = store.read(stale_lease["instance_id"])
    assert entry.lease is not None

    # Disagreeing: that root's lease names another process than the OS shows on the port.
    store.write(replace(entry.lease, pid=entry.lease.pid + 100_000))
    doc = doctor(ours, "--reset", others=(theirs,))
    (record,) = doc["orphans"]
    assert (record["cleanup_class"], record["skip_reason"]) == ("operator_required", "identity_mismatch")
    assert any(m.startswith("pid:") for m in record["mismatches"])
    assert doc["reset_result"]["swept"] == [] and pid_alive(stale.pid)

    # Unsafe: the lease file there is group/world-readable.
    store.write(entry.lease)
    os.chmod(entry.path, 0o644)
    doc = doctor(ours, "--reset", others=(theirs,))
    (record,) = doc["orphans"]
    assert (record["skip_reason"], record["root_problem"]) == ("cross_root", "lease:insecure_mode")
    assert doc["reset_result"]["swept"] == [] and pid_alive(stale.pid)
    human = ours.cli("auth", "doctor")
    assert "its root could not be read safely (lease:insecure_mode)" in human.stdout

    # Unsafe: the root itself is group-writable.
    os.chmod(entry.path, 0o600)
    os.chmod(theirs.root, 0o770)
    try:
        (record,) = doctor(ours, "--reset", others=(theirs,))["orphans"]
        assert (record["skip_reason"], record["root_problem"]) == ("cross_root", "insecure_mode")
        assert pid_alive(stale.pid)
    finally:
        os.chmod(theirs.root, 0o700)
