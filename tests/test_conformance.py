"""The pure clause core of ``protocol check``: each clause passes, fails with what was seen, or is n/a.

No I/O: observations are built by hand. The live behaviour is in tests/test_node_daemon_live.py."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from synclease.core.conformance import (
    CLAUSES,
    LeaseSample,
    RetireSeen,
    Sighting,
    Socket,
    Status,
    all_pass,
    evaluate,
)
from synclease.core.conformance_health import health_problems
from synclease.core.health import parse_health
from synclease.core.identity import ProcessFacts
from synclease.core.lease import LeaseRecord
from synclease.core.record import replace

REPO = Path(__file__).parent.parent
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
PID, PORT, START = 4242, 9433, 1_700_000_000.25
LEASE = LeaseRecord(
    family="sync",
    instance_id="abcdef0123456789",
    scope_id="0123456789abcdef",
    daemon_root="/tmp/root",
    pid=PID,
    process_start_time=START,
    port=PORT,
    package_version="0.1.0",
    protocol_version=1,
    acquired_at=T0,
    renewed_at=T0,
    ttl_seconds=10.0,
    state="serving",
    token="secret-token-value",
)


def health_doc(**changes: Any) -> dict[str, Any]:
    stamp = "2026-01-01T12:00:00.000000Z"
    doc: dict[str, Any] = {
        "daemon_family": "sync",
        "instance_id": LEASE.instance_id,
        "scope_id": LEASE.scope_id,
        "daemon_root": LEASE.daemon_root,
        "pid": PID,
        "port": PORT,
        "process_start_time": START,
        "package_version": "0.1.0",
        "protocol_version": 1,
        "started_at": stamp,
        "lease": {"state": "serving", "renewed_at": stamp, "expires_at": stamp, "write_error": None},
        "sync": {"running": True, "queue_depth": 0, "last_sync": None, "consecutive_failures": 0},
        "auth_scope": None,
        "server_url": None,
        "queue_db_path": None,
        "session_id": None,
    }
    doc.update(changes)
    return doc


def samples(gaps: list[float], inodes: list[int] | None = None) -> tuple[LeaseSample, ...]:
    """One sample per renewal, ``gaps`` seconds apart, each seen right after it was written."""
    out, at = [], T0
    for index, gap in enumerate([0.0, *gaps]):
        at += timedelta(seconds=gap)
        inode = inodes[index] if inodes else 100 + index
        out.append(LeaseSample(at, replace(LEASE, renewed_at=at), None, inode))
    return tuple(out)


def good(**changes: Any) -> Sighting:
    doc = health_doc()
    obs = Sighting(
        family="sync",
        port=PORT,
        samples=samples([2.0, 2.0]),
        health_status=200,
        health_document=doc,
        health=parse_health(doc),
        sockets=(Socket("127.0.0.1", PID),),
        process=ProcessFacts(True, START + 0.01),
    )
    return replace(obs, **changes)


def verdicts(obs: Sighting) -> dict[str, tuple[Status, str]]:
    return {r.id: (r.status, r.seen) for r in evaluate(obs)}


def test_a_conforming_daemon_passes_and_the_retire_clauses_are_na_without_retire() -> None:
    seen = verdicts(good())
    assert all(
        status is Status.PASS
        for cid, (status, _) in seen.items()
        if not cid.startswith(("L1.CONTROL", "L1.RETIRE", "L1.SINGLETON"))
    )
    for cid in ("L1.CONTROL.AUTH", "L1.CONTROL.RETIRE", "L1.RETIRE.DRAIN", "L1.SINGLETON.SUPERSEDE"):
        assert seen[cid] == (Status.NA, "run with --retire to check")
    assert all_pass(evaluate(good()))


def test_every_clause_id_is_defined_in_the_spec() -> None:
    spec = (REPO / "protocol" / "lease-v1.md").read_text()
    index = spec[spec.index("### 17.1") :]
    for clause in CLAUSES:
        assert f"`{clause.id}`" in index, clause.id
    assert len({c.id for c in CLAUSES}) == len(CLAUSES)


def test_a_late_renewal_or_an_expired_sighting_fails_renewal() -> None:
    status, seen = verdicts(good(samples=samples([2.0, 5.0])))["L1.LEASE.RENEW"]
    assert status is Status.FAIL and "gap 5.00s > ttl/3" in seen
    late = samples([2.0])
    stale = (*late, LeaseSample(T0 + timedelta(seconds=12.5), late[-1].lease, None, 101))
    status, seen = verdicts(good(samples=stale))["L1.LEASE.RENEW"]
    assert status is Status.FAIL and "seen expired" in seen
    status, seen = verdicts(good(samples=samples([])))["L1.LEASE.RENEW"]
    assert status is Status.FAIL and "did not advance" in seen


def test_an_in_place_write_or_a_torn_read_fails_atomicity() -> None:
    status, seen = verdicts(good(samples=samples([2.0, 2.0], inodes=[7, 7, 8])))["L1.WRITE.ATOMIC"]
    assert status is Status.FAIL and "same inode" in seen
    torn = (*samples([2.0]), LeaseSample(T0, None, "not_json", 9))
    result = verdicts(good(samples=torn))
    assert result["L1.WRITE.ATOMIC"][0] is Status.FAIL
    assert result["L1.LEASE.SCHEMA"] == (Status.FAIL, "untrusted read(s): not_json")


def test_self_report_disagreement_names_the_fields() -> None:
    doc = health_doc(pid=PID + 1, process_start_time=START + 3)
    status, seen = verdicts(good(health_document=doc, health=parse_health(doc)))["L1.HEALTH.AGREES"]
    assert status is Status.FAIL and "pid lease=4242 health=4243" in seen and "process_start_time" in seen


def test_the_os_listener_must_be_the_claimed_process_on_loopback_only() -> None:
    other = verdicts(good(sockets=(Socket("127.0.0.1", 999),)))["L1.OS.AGREES"]
    assert other[0] is Status.FAIL and "999" in other[1]
    reused = verdicts(good(process=ProcessFacts(True, START + 60)))["L1.OS.AGREES"]
    assert reused[0] is Status.FAIL and "started" in reused[1]
    wildcard = verdicts(good(sockets=(Socket("0.0.0.0", PID),)))["L1.BIND.LOOPBACK"]
    assert wildcard == (Status.FAIL, "bound on 0.0.0.0")
    unreadable = verdicts(good(table_error="access_denied"))
    assert unreadable["L1.BIND.LOOPBACK"][0] is Status.FAIL and unreadable["L1.OS.AGREES"][0] is Status.FAIL


def test_retire_clauses() -> None:
    done = RetireSeen(
        "request", status=202, lease_gone=True, process_gone=True, port_closed=True, seconds=0.4
    )
    seen = verdicts(good(unauth_status=403, unauth_survived=True, retire=done))
    assert seen["L1.CONTROL.AUTH"][0] is Status.PASS and seen["L1.CONTROL.RETIRE"][0] is Status.PASS
    assert seen["L1.SINGLETON.SUPERSEDE"][0] is Status.NA and seen["L1.RETIRE.DRAIN"][0] is Status.NA
    lingering = replace(done, process_gone=False, seconds=10.5)
    status, text = verdicts(good(retire=lingering))["L1.CONTROL.RETIRE"]
    assert status is Status.FAIL and "still present: process" in text
    obeyed = verdicts(good(unauth_status=202, unauth_survived=False))["L1.CONTROL.AUTH"]
    assert obeyed[0] is Status.FAIL
    hasty = replace(done, in_flight_at_start=True)
    assert verdicts(good(retire=hasty))["L1.RETIRE.DRAIN"][0] is Status.FAIL
    patient = replace(hasty, answered_after=3, seen_working_after=True)
    assert verdicts(good(retire=patient))["L1.RETIRE.DRAIN"][0] is Status.PASS
    skipped = RetireSeen("superseded", "not the recorded singleton")
    assert verdicts(good(retire=skipped))["L1.SINGLETON.SUPERSEDE"] == (
        Status.NA,
        "not the recorded singleton",
    )


def test_a_family_without_lease_records_is_judged_on_its_listener_only() -> None:
    doc = {
        "daemon_family": "dashboard",
        "pid": PID,
        "port": 9300,
        "process_start_time": START,
        "package_version": "1",
    }
    obs = Sighting(
        family="dashboard",
        port=9300,
        no_lease="no lease-v1 record",
        health_status=200,
        health_document=doc,
        health=parse_health(doc),
        sockets=(Socket("127.0.0.1", PID),),
        process=ProcessFacts(True, START),
    )
    seen = verdicts(obs)
    assert seen["L1.LEASE.SCHEMA"] == (Status.NA, "no lease-v1 record")
    assert seen["L1.HEALTH.SCHEMA"][0] is Status.PASS and seen["L1.OS.AGREES"][0] is Status.PASS


HEALTH_SCHEMA = Draft202012Validator(json.loads((REPO / "protocol" / "health-v1.schema.json").read_text()))


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"pid": 0},
        {"port": 9500},
        {"token": "x"},
        {"started_at": "2026-01-01 12:00:00"},
        {"lease": {"state": "busy", "renewed_at": "x", "expires_at": "y"}},
        {"sync": {"running": "yes"}},
        {"instance_id": "short"},
    ],
)
def test_the_health_shape_agrees_with_the_json_schema(changes: dict[str, Any]) -> None:
    doc = health_doc(**changes)
    assert (health_problems(doc, "sync") == ()) == HEALTH_SCHEMA.is_valid(doc)


def test_check_document_schema_accepts_a_rendered_report() -> None:
    from synclease.cli.protocol_check import document
    from synclease.services.conformance import CheckReport, Located

    report = CheckReport(
        Located("sync", PORT, Path("/tmp/root"), LEASE.instance_id), evaluate(good()), None, PID
    )
    doc = document(report, "2026-01-01T12:00:00.000000Z")
    Draft202012Validator(json.loads((REPO / "protocol" / "check-v1.schema.json").read_text())).validate(doc)
    assert doc["ok"] is True and not re.search("secret-token-value", json.dumps(doc))
