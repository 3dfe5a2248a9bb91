"""Poison events and unusable queues, live: real daemons through the CLI in a temporary root, uploading
to the loopback receiver. Every doctor document is validated against the schema; every wait polls an
observable fact (receiver state, CLI output, files)."""

from __future__ import annotations

import json
import os
import shlex
import stat
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from synclease.adapters.queue import queue_path
from synclease.adapters.root import DaemonRoot
from tests.conftest import Sandbox, get_health, login, wait_for
from tests.receiver import Receiver
from tests.test_reaper_live import doctor
from tests.test_sync_work_live import DRAIN_TIMEOUT, disk_depth, new_token

pytestmark = pytest.mark.live

GARBAGE = b"\x89not a database, just bytes\x00" * 300


def push_lines(box: Sandbox, events: list[dict[str, Any]]) -> dict[str, Any]:
    lines = "".join(json.dumps(e) + "\n" for e in events).encode()
    proc = box.cli("sync", "push", "-", "--json", input=lines)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    if doc["daemon"] is not None:
        box.extra_pids.add(doc["daemon"]["pid"])
    return doc


def finding(doc: dict[str, Any], fid: str) -> dict[str, Any] | None:
    return next((f for f in doc["findings"] if f["id"] == fid), None)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}


def test_one_poison_among_300_is_dead_lettered_listed_and_requeued(sandbox: Sandbox, rx: Receiver) -> None:
    token = new_token()
    login(sandbox, rx, token)
    rx.reject_events(422)  # the server refuses any batch holding {"poison": true}
    events: list[dict[str, Any]] = [{"type": "test.event", "data": {"n": n}} for n in range(300)]
    events[150] = {"type": "test.poison", "data": {"poison": True, "why": "[bold]not markup[/bold]"}}
    doc = push_lines(sandbox, events)
    ids, port, pid = doc["ids"], doc["daemon"]["port"], doc["daemon"]["pid"]
    poison, good = ids[150], ids[:150] + ids[151:]

    wait_for(lambda: set(good) <= rx.accepted_ids, timeout=DRAIN_TIMEOUT, what="every good event")
    listing = wait_for(
        lambda: (d := sandbox.cli_json("sync", "dead-letter"))["total"] == 1 and d, what="the dead letter"
    )
    assert all(rx.accepted_counts[i] == 1 for i in good) and poison not in rx.accepted_ids
    [dead] = listing["dead_letters"]
    assert set(dead) == {
        "id",
        "type",
        "created_at",
        "dead_lettered_at",
        "attempts",
        "rejections",
        "last_status",
        "reason",
        "data_bytes",
        "queue",
    }
    assert (dead["id"], dead["type"], dead["queue"]) == (poison, "test.poison", "scope")
    assert (dead["last_status"], dead["rejections"]) == (422, 3) and dead["attempts"] >= 3
    assert dead["reason"] == f"HTTP 422 {HTTPStatus(422).phrase}"  # the phrase differs by Python version
    assert listing["requeued"] == 0 and listing["truncated"] is False and listing["daemon"] is None
    assert [q["queue"] for q in listing["queues"]] == ["scope", "local"]
    assert listing["queues"][0]["dead_letters"] == 1 and listing["queues"][0]["depth"] == 0

    human = sandbox.cli("sync", "dead-letter")
    assert human.returncode == 0 and poison in human.stdout and "HTTP 422" in human.stdout
    assert '{"poison":true' in human.stdout and "[bold]" in human.stdout  # a preview, shown verbatim
    assert "--requeue" in human.stdout

    report = doctor(sandbox)
    assert report["queue"]["dead_letters"] == 1 and report["queue"]["depth"] == 0
    dead_finding = finding(report, "dead_letter")
    assert dead_finding is not None and dead_finding["remediation"]["command"] == "synclease sync dead-letter"
    assert dead_finding["summary"].startswith("1 event(s) were dead-lettered")
    human_doctor = sandbox.cli("auth", "doctor")
    assert human_doctor.returncode == 0 and "1 dead-lettered" in human_doctor.stdout
    health = get_health(port)
    assert health is not None and health["sync"]["dead_letters"] == 1
    assert sandbox.cli_json("sync", "status")["singleton"]["sync"]["dead_letters"] == 1

    rx.reject_events(None)  # the server was fixed
    requeued = sandbox.cli_json("sync", "dead-letter", "--requeue")
    assert requeued["requeued"] == 1 and [d["id"] for d in requeued["dead_letters"]] == [poison]
    assert requeued["daemon"] == {"pid": pid, "port": port}  # the running daemon was woken
    wait_for(lambda: poison in rx.accepted_ids, timeout=DRAIN_TIMEOUT, what="the requeued event")
    assert sandbox.cli_json("sync", "dead-letter")["total"] == 0
    wait_for(lambda: disk_depth(sandbox) == 0, what="an empty queue")
    assert finding(doctor(sandbox), "dead_letter") is None

    outputs = listing, requeued, report
    assert all(token not in json.dumps(o) for o in outputs) and token not in human.stdout + human.stderr
    assert token not in sandbox.logs()


@pytest.mark.parametrize("logged_in", [True, False], ids=["scope-queue", "local-queue"])
def test_a_corrupt_queue_is_unusable_and_the_fix_moves_it_aside(
    sandbox: Sandbox, rx: Receiver, logged_in: bool
) -> None:
    root = DaemonRoot(sandbox.root)
    scope = None
    if logged_in:
        login(sandbox, rx, new_token())
        scope = sandbox.cli_json("auth", "status")["auth_scope"]
    root.prepare()
    path = queue_path(root, scope)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, GARBAGE)
    os.close(fd)

    failed = sandbox.cli("sync", "push", "--type", "t", "--json")
    assert failed.returncode == 1 and "not usable" in failed.stderr and "Traceback" not in failed.stderr
    refused = sandbox.cli("sync", "start")  # the daemon cannot open its queue
    assert refused.returncode == 1 and "not_a_queue_database" in refused.stderr
    before = snapshot(sandbox.root)
    report = doctor(sandbox)
    assert snapshot(sandbox.root) == before  # read-only: nothing created, nothing touched
    [db] = [d for d in report["queue"]["databases"] if d["path"] == str(path)]
    assert db["problem"] == "not_a_queue_database" and db["queue"] == ("scope" if logged_in else "local")
    unusable = finding(report, "queue_unusable")
    assert unusable is not None and unusable["severity"] == "error"
    command = unusable["remediation"]["command"]
    assert command == f"synclease sync move-aside {shlex.quote(str(path))}"

    argv = shlex.split(command)
    fixed = sandbox.cli(*argv[1:])  # the one-step fix, as printed
    assert fixed.returncode == 0, fixed.stderr
    [aside] = list(path.parent.glob(path.name + ".unusable-*"))
    assert aside.read_bytes() == GARBAGE and stat.S_IMODE(aside.stat().st_mode) == 0o600
    assert not path.exists()

    started = sandbox.cli_json("sync", "start")
    assert started["pid"] > 0
    if logged_in:
        pushed = push_lines(sandbox, [{"type": "after.fix", "data": {"ok": True}}])
        wait_for(lambda: set(pushed["ids"]) <= rx.accepted_ids, timeout=DRAIN_TIMEOUT)
    after = doctor(sandbox)
    assert finding(after, "queue_unusable") is None
    assert aside.read_bytes() == GARBAGE  # still there, for recovery


def test_move_aside_refuses_a_usable_queue_and_a_foreign_path(sandbox: Sandbox, tmp_path: Path) -> None:
    assert sandbox.cli("sync", "push", "--type", "t").returncode == 0  # a healthy local queue
    path = queue_path(DaemonRoot(sandbox.root), None)
    usable = sandbox.cli("sync", "move-aside", str(path))
    assert usable.returncode == 1 and "is usable" in usable.stderr and path.exists()
    assert len(usable.stderr.strip().splitlines()) == 1
    stranger = tmp_path / "0123456789abcdef.sqlite3"
    stranger.write_bytes(GARBAGE)
    foreign = sandbox.cli("sync", "move-aside", str(stranger))
    assert foreign.returncode == 2 and "not a queue database of this root" in foreign.stderr
    assert stranger.read_bytes() == GARBAGE
    missing = sandbox.cli("sync", "move-aside", str(path.with_name("0" * 16 + ".sqlite3")))
    assert missing.returncode == 2 and "no queue database" in missing.stderr
    assert "Traceback" not in usable.stderr + foreign.stderr + missing.stderr


def test_dead_letter_without_a_root_creates_nothing(sandbox: Sandbox) -> None:
    assert not sandbox.root.exists()
    listing = sandbox.cli_json("sync", "dead-letter")
    assert listing == {
        "dead_letters": [],
        "total": 0,
        "truncated": False,
        "requeued": 0,
        "queues": [],
        "daemon": None,
    }
    assert sandbox.cli_json("sync", "dead-letter", "--requeue")["requeued"] == 0
    human = sandbox.cli("sync", "dead-letter")
    assert human.returncode == 0 and "no dead letters" in human.stdout
    assert not sandbox.root.exists()
