"""Live multi-process test: concurrent appends under the ledger lock never tear, interleave, lose or
reorder a line, and rotation stays bounded with exactly one older file.

Four writer processes append events of varying size (some with a log tail cut to fit 4 KiB) as fast
as they can while two reader processes read the ledger continuously. Every read must see only whole,
valid lines (nothing skipped, nothing refused), each writer's events in order with no gap; at the
end the files are within their bound and hold the newest events of every writer. Without the lock
(or with more than one ``write`` per event) the bound is overrun or events are lost to a double
rotation, or lines interleave. Children start together on a "go" line and stop at an iteration cap
or a deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from synclease.adapters.ledger_store import LedgerStore
from synclease.adapters.root import DaemonRoot
from synclease.core.ledger import MAX_LINE_BYTES

WRITERS = 4
READERS = 2
RUN_SECONDS = 2.5
MAX_WRITER_ROUNDS = 5_000
MAX_READER_ROUNDS = 5_000
#: Small, so that rotations are frequent and race with each other if the lock is gone.
ROTATING_BOUND = 8 * MAX_LINE_BYTES

COMMON = """
import json, os, sys, time
from datetime import UTC, datetime
from pathlib import Path
from synclease.adapters.ledger_store import LedgerStore
from synclease.adapters.root import DaemonRoot
from synclease.core.ledger import EventKind, EventEvidence, LedgerEvent

store = LedgerStore(DaemonRoot(Path(sys.argv[1])), max_file_bytes=int(sys.argv[3]))
print("ready", flush=True)
if sys.stdin.readline().strip() != "go":
    sys.exit(3)
deadline = time.monotonic() + float(sys.argv[2])
"""

WRITER = (
    COMMON
    + """
index, max_rounds = int(sys.argv[4]), int(sys.argv[5])
rounds, failures = 0, []
while rounds < max_rounds and time.monotonic() < deadline:
    size = (rounds * 7 + index * 3) % 23  # 0..22 log lines: ~400 B up to a tail cut to fit 4 KiB
    event = LedgerEvent(
        at=datetime.now(UTC), kind=EventKind.VANISHED if size else EventKind.SERVING,
        instance_id=f"w{index:02d}-r{rounds:07d}", pid=os.getpid(), port=9400 + index, package_version="1.0",
        evidence=EventEvidence(queue_depth=rounds, log_tail=tuple(f"w{index} r{rounds} {n} " + "x" * 180 for n in range(size))),
    )
    result = store.append(event)
    if not result.ok:
        failures.append(result.one_line())
    rounds += 1
print(json.dumps({"role": "writer", "index": index, "rounds": rounds, "failures": failures[:5],
                  "failure_total": len(failures)}), flush=True)
"""
)

READER = (
    COMMON
    + """
max_rounds = int(sys.argv[4])
rounds, seen, bad = 0, 0, []
while rounds < max_rounds and time.monotonic() < deadline:
    result = store.read()
    if result.skipped or result.problems:
        bad.append(["skipped", result.skipped, [p.reason for p in result.problems]])
    last = {}
    for event in result.events:
        writer, n = event.instance_id[:3], int(event.instance_id[5:])
        if writer in last and n != last[writer] + 1:
            bad.append(["gap", writer, last[writer], n])
        last[writer] = n
    seen += len(result.events)
    rounds += 1
print(json.dumps({"role": "reader", "rounds": rounds, "seen": seen, "bad": bad[:20], "bad_total": len(bad)}),
      flush=True)
sys.exit(1 if bad else 0)
"""
)


def start(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def run_children(root: DaemonRoot, bound: int, writer_rounds: int) -> list[dict[str, Any]]:
    procs: list[subprocess.Popen[str]] = []
    common = [str(root.path), str(RUN_SECONDS), str(bound)]
    try:
        for index in range(WRITERS):
            procs.append(start([sys.executable, "-c", WRITER, *common, str(index), str(writer_rounds)]))
        for _ in range(READERS):
            procs.append(start([sys.executable, "-c", READER, *common, str(MAX_READER_ROUNDS)]))
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:  # release everyone at once, so that appends and reads overlap
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
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
    for report in reports:
        assert report["exit"] == 0, report
        if report["role"] == "writer":
            assert report["rounds"] > 0 and report["failure_total"] == 0, report
        else:
            assert report["bad_total"] == 0, report
    return reports


def by_writer(store: LedgerStore) -> dict[str, list[int]]:
    result = store.read()
    assert (result.skipped, result.problems) == (0, ())
    found: dict[str, list[int]] = {}
    for event in result.events:
        assert event.instance_id is not None
        found.setdefault(event.instance_id[:3], []).append(int(event.instance_id[5:]))
    return found


def assert_whole_lines(path: Path, bound: int) -> None:
    data = path.read_bytes()
    assert len(data) <= bound, f"{path.name} is {len(data)} bytes, over its bound {bound}"
    assert data.endswith(b"\n")
    for line in data.splitlines(keepends=True):
        assert len(line) <= MAX_LINE_BYTES
        json.loads(line)


@pytest.mark.timeout(120)
def test_concurrent_appends_keep_every_line_whole_and_in_order(tmp_path: Path) -> None:
    root = DaemonRoot(tmp_path / "root").prepare()
    store = LedgerStore(root)
    reports = run_children(root, store.max_file_bytes, writer_rounds=80)  # < 1 MiB in all: no rotation
    rounds = {f"w{r['index']:02d}": r["rounds"] for r in reports if r["role"] == "writer"}
    assert not store.rotated_path.exists()
    assert_whole_lines(store.path, store.max_file_bytes)
    assert by_writer(store) == {writer: list(range(n)) for writer, n in rounds.items()}


@pytest.mark.timeout(120)
def test_concurrent_appends_rotate_within_the_bound_without_losing_the_newest(tmp_path: Path) -> None:
    root = DaemonRoot(tmp_path / "root").prepare()
    store = LedgerStore(root, max_file_bytes=ROTATING_BOUND)
    reports = run_children(root, ROTATING_BOUND, writer_rounds=MAX_WRITER_ROUNDS)
    rounds = {f"w{r['index']:02d}": r["rounds"] for r in reports if r["role"] == "writer"}
    assert sum(rounds.values()) * 400 > 4 * ROTATING_BOUND  # enough appends for several rotations
    assert sorted(os.listdir(root.ledger_dir)) == ["sync.jsonl", "sync.jsonl.1", "sync.jsonl.lock"]
    assert_whole_lines(store.path, ROTATING_BOUND)
    assert_whole_lines(store.rotated_path, ROTATING_BOUND)
    # What is kept is a suffix of the append order: per writer, a gapless run ending at its last event.
    for writer, kept in by_writer(store).items():
        assert kept == list(range(kept[0], rounds[writer])), (writer, kept[:3], kept[-3:], rounds[writer])
