"""Live multi-process test: concurrent renewals never expose a torn or half-written record to a reader.

Four writer processes each renew their own lease and all rewrite one shared lease path in a tight loop,
while two reader processes read and decode continuously. A reader may see a lease missing (before the
first write) or valid, never anything in between. Children report a JSON summary on stdout; they start
together on a "go" line and stop at an iteration cap or a deadline, whichever comes first.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot

WRITERS = 4
READERS = 2
RUN_SECONDS = 2.5
MAX_WRITER_ROUNDS = 50_000
MAX_READER_ROUNDS = 200_000
SHARED_ID = "shared-lease-0000"

COMMON = """
import json, os, secrets, sys, time
from synclease.core.record import replace
from datetime import UTC, datetime
from pathlib import Path
from synclease.core.lease import LeaseRecord
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.process import own_start_time
from synclease.adapters.root import DaemonRoot

root = DaemonRoot(Path(sys.argv[1]))
store = LeaseStore(root)
print("ready", flush=True)
if sys.stdin.readline().strip() != "go":
    sys.exit(3)
deadline = time.monotonic() + float(sys.argv[2])
"""

WRITER = (
    COMMON
    + """
index, max_rounds = int(sys.argv[3]), int(sys.argv[4])
now = datetime.now(UTC)
base = LeaseRecord(
    family="sync", instance_id=f"writer-{index:02d}-lease", scope_id=root.scope_id,
    daemon_root=str(root.path), pid=os.getpid(), process_start_time=own_start_time(),
    port=9400 + index, package_version="1.0.0", protocol_version=1, acquired_at=now, renewed_at=now,
    ttl_seconds=10.0, state="serving", token=secrets.token_urlsafe(24),
)
rounds = 0
while rounds < max_rounds and time.monotonic() < deadline:
    now = datetime.now(UTC)
    store.write(base.renewed(now))
    # Records of varying size on one path: a torn write would show as a prefix or a mix.
    size = 1 + (rounds * 37 + index * 11) % 200
    store.write(replace(
        base, instance_id="shared-lease-0000", renewed_at=now, token=secrets.token_hex(64)[:size],
        package_version=f"{index}." + "9" * (size % 60), auth_scope=None if rounds % 2 else "x" * (size * 10),
    ))
    rounds += 1
print(json.dumps({"role": "writer", "index": index, "rounds": rounds}), flush=True)
"""
)

READER = (
    COMMON
    + """
max_rounds = int(sys.argv[3])
shared = root.lease_path("shared-lease-0000")
counts = {"valid": 0, "missing": 0, "listed": 0}
bad = []
rounds = 0
while rounds < max_rounds and time.monotonic() < deadline:
    entry = store.read_path(shared)
    if entry.lease is not None:
        counts["valid"] += 1
    elif entry.problem == "missing":
        counts["missing"] += 1
    else:
        bad.append([entry.problem, entry.detail])
    if rounds % 10 == 0:
        for listed in store.list():
            counts["listed"] += 1
            if listed.lease is None and listed.problem != "missing":
                bad.append([listed.instance_id, listed.problem, listed.detail])
    rounds += 1
print(json.dumps({"role": "reader", "rounds": rounds, "counts": counts, "bad": bad[:20],
                  "bad_total": len(bad)}), flush=True)
sys.exit(1 if bad else 0)
"""
)


def start(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


@pytest.mark.timeout(120)
def test_concurrent_renewals_never_expose_a_torn_record(tmp_path: Path) -> None:
    root = DaemonRoot(tmp_path / "root").prepare()
    procs: list[subprocess.Popen[str]] = []
    try:
        for index in range(WRITERS):
            argv = [str(root.path), str(RUN_SECONDS), str(index), str(MAX_WRITER_ROUNDS)]
            procs.append(start([sys.executable, "-c", WRITER, *argv]))
        for _ in range(READERS):
            argv = [str(root.path), str(RUN_SECONDS), str(MAX_READER_ROUNDS)]
            procs.append(start([sys.executable, "-c", READER, *argv]))
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:  # release everyone at once, so the readers overlap the writers
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()  # communicate() below closes it
        reports: list[dict[str, Any]] = []
        for proc in procs:
            out, _ = proc.communicate(timeout=90)
            lines = out.strip().splitlines()
            assert lines, f"child {proc.pid} printed nothing (exit {proc.returncode})"
            report = json.loads(lines[-1])
            report["exit"] = proc.returncode
            reports.append(report)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)

    writers = [r for r in reports if r["role"] == "writer"]
    readers = [r for r in reports if r["role"] == "reader"]
    assert len(writers) == WRITERS and len(readers) == READERS
    for report in writers:
        assert report["exit"] == 0, report
        assert report["rounds"] > 0, report
    for report in readers:
        assert report["bad_total"] == 0, report
        assert report["exit"] == 0, report
        assert report["counts"]["valid"] > 0, report

    # Afterwards: every lease is valid, the shared one names the shared id, no writer temp file is left.
    entries = LeaseStore(root).list()
    assert sorted(e.instance_id for e in entries) == sorted(
        [SHARED_ID] + [f"writer-{i:02d}-lease" for i in range(WRITERS)]
    )
    assert all(e.lease is not None for e in entries), entries
    assert not [p.name for p in root.leases_dir().iterdir() if p.name.startswith(".")]
