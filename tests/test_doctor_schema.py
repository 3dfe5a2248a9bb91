"""``protocol/doctor-v2.schema.json`` against the documents ``report.build`` makes. Pure: no processes.

The live tests (``test_reaper_live.py``) validate real ``auth doctor --json`` output; here every shape
the classifier can produce (hypothesis over the same generated cases as the table's property test),
every lease row and every reset outcome is validated, and the schema is shown to refuse what must
never be printed: tokens, a skip reason on ``safe_auto``, unknown values, extra fields.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from jsonschema import Draft202012Validator

from synclease.core.classify import classify, judge_orphan_lease, unclaimed_leases
from synclease.core.escalate import CleanupPath
from synclease.core.fleet import FleetContext, IdentityRecord, Observation, ScanResult, Survey
from synclease.core.identity import ProcessFacts
from synclease.core.outcomes import Failed, LeaseRemoved, Skipped, SweepResult, Swept
from synclease.core.record import replace
from synclease.core.report import DOCTOR_SCHEMA_VERSION, DoctorView, SessionSummary, build
from tests.test_classify import (
    IID,
    NOW,
    PID,
    PORT,
    cases,
    entry_of,
    make_ctx,
    make_lease,
    make_obs,
    make_report,
    singleton_of,
    unreadable,
)

SCHEMA = json.loads((Path(__file__).parent.parent / "protocol" / "doctor-v2.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
SESSION = SessionSummary(
    server_url="https://sync.example.test",
    principal="alice",
    team=None,
    auth_scope="https://sync.example.test|alice|",
)


def errors(doc: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(doc)]


def survey_of(ctx: FleetContext, *observations: Observation) -> Survey:
    records = tuple(classify(obs, ctx) for obs in observations)
    verdicts = tuple(
        judge_orphan_lease(entry, True, ProcessFacts(exists=False), set(), ctx.now)
        for entry in unclaimed_leases(records, ctx.leases)
    )
    return Survey(ctx, ScanResult(tuple(observations), 50, 12.5), records, verdicts)


def reset_result(records: tuple[IdentityRecord, ...]) -> dict[str, Any]:
    result = SweepResult(
        swept=[
            Swept(PID, PORT, IID, "3.2.2", path, reason)
            for path, reason in (
                (CleanupPath.HTTP_RETIRE, "expired_lease"),
                (CleanupPath.TERMINATE, "no_lease"),
                (CleanupPath.KILL, "unresponsive"),
            )
        ],
        skipped=[Skipped.of(r) for r in records],
        failed=[Failed(r.pid, r.port, r.instance_id, "survived_kill") for r in records if r.pid is not None],
        leases_removed=[LeaseRemoved(IID, PID, PORT, "pid_reused")],
    )
    return result.to_json()


def pile() -> Survey:
    """A root with one of each: safe_auto, lease_live, no_lease, third_party, the singleton, and lease
    files that are stale, alive-unclaimed and unreadable."""
    stale = make_lease()
    live = make_lease(instance_id="inst-live-0002", pid=PID + 1, port=PORT + 1, renewed_at=NOW)
    single = make_lease(instance_id="inst-single-03", pid=PID + 2, port=PORT + 2, renewed_at=NOW)
    orphan = make_lease(instance_id="inst-gone-0004", pid=PID + 9, port=PORT + 9)
    ctx = make_ctx(
        entry_of(stale),
        entry_of(live),
        entry_of(single),
        entry_of(orphan),
        unreadable("inst-broken-05", "not_json"),
        singleton=singleton_of("inst-single-03", PID + 2, PORT + 2),
    )

    def obs_for(lease: Any) -> Observation:
        report = make_report(instance_id=lease.instance_id, pid=lease.pid, port=lease.port)
        return make_obs(report, port=lease.port, pid=lease.pid)

    return survey_of(
        ctx,
        obs_for(stale),
        obs_for(live),
        obs_for(single),
        make_obs(
            make_report(instance_id=None, scope_id=None, family=None, pid=PID + 3), port=PORT + 3, pid=PID + 3
        ),
        replace(  # a container's daemon: PID 3 here is another process
            make_obs(
                make_report(instance_id="inst-contained", pid=3, port=PORT + 6), port=PORT + 6, pid=PID + 6
            ),
            reported_process=ProcessFacts(True, 1.0),
        ),
        make_obs(None, port=PORT + 4, pid=PID + 4, error="timeout"),
        make_obs(make_report(family="dashboard", sync_like=False), port=PORT + 5, pid=None),
    )


def test_the_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["schema_version"]["const"] == DOCTOR_SCHEMA_VERSION


def test_a_full_pile_with_session_and_reset_result_validates() -> None:
    found = pile()
    doc = build(DoctorView(survey=found, generated_at=NOW, session=SESSION))
    assert errors(doc) == []
    assert {o["skip_reason"] for o in doc["orphans"]} == {None, "lease_live", "no_lease"}
    assert {i["skip_reason"] for i in doc["ignored"]} == {
        "third_party",
        "other_family",
        "other_pid_namespace",
    }
    contained = [i for i in doc["ignored"] if i["skip_reason"] == "other_pid_namespace"]
    assert [i["note"] for i in contained] == ["served from another PID namespace, e.g. a container"]
    assert doc["daemon"]["skip_reason"] == "recorded_singleton"
    assert {row["state"] for row in doc["leases"]} == {"expired", "live", "unreadable"}
    doc["reset_result"] = reset_result(found.records)
    assert errors(doc) == []
    assert "token" not in json.dumps(doc)


def test_an_untrusted_session_validates_and_carries_only_its_problem() -> None:
    doc = build(DoctorView(survey=pile(), generated_at=NOW, session=SessionSummary(problem="not_json")))
    assert errors(doc) == []
    assert "session_unreadable" in {f["id"] for f in doc["findings"]}
    assert errors(_with(doc, ["session", "detail"], "x")) != []


def test_an_empty_root_validates() -> None:
    doc = build(DoctorView(survey=survey_of(make_ctx()), generated_at=NOW, session=None))
    assert errors(doc) == []
    assert doc["daemon"] is None and {f["id"] for f in doc["findings"]} == {"no_daemon", "no_session"}


@settings(max_examples=300, deadline=None)
@given(cases())
def test_every_classified_record_validates_where_the_survey_puts_it(
    case: tuple[Observation, FleetContext],
) -> None:
    obs, ctx = case
    found = survey_of(ctx, obs)
    doc = build(DoctorView(survey=found, generated_at=NOW, session=None))
    doc["reset_result"] = reset_result(found.records)
    assert errors(doc) == [], found.records


def _with(doc: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    bad = copy.deepcopy(doc)
    target = bad
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return bad


@pytest.mark.parametrize(
    "where",
    [
        [],
        ["session"],
        ["daemon"],
        ["orphans", 0],
        ["ignored", 0],
        ["leases", 0],
        ["findings", 0],
        ["findings", 0, "remediation"],
        ["scan"],
        ["reset_result"],
        ["reset_result", "swept", 0],
        ["reset_result", "skipped", 0],
        ["reset_result", "failed", 0],
        ["reset_result", "leases_removed", 0],
    ],
)
@pytest.mark.parametrize("name", ["token", "lease_token", "Token"])
def test_a_token_property_is_refused_everywhere(where: list[Any], name: str) -> None:
    found = pile()
    doc = build(DoctorView(survey=found, generated_at=NOW, session=SESSION))
    doc["reset_result"] = reset_result(found.records)
    assert errors(doc) == []
    assert errors(_with(doc, [*where, name], "s3cret")) != []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["schema_version"], 1),
        (["generated_at"], "2026-03-01 12:00:00"),
        (["orphans", 0, "skip_reason"], "lease_live"),  # safe_auto with a reason
        (["orphans", 1, "skip_reason"], None),  # operator_required without one
        (["orphans", 1, "skip_reason"], "third_party"),  # a never_touch reason on an operator row
        (["orphans", 0, "cleanup_class"], "never_touch"),
        (["orphans", 0, "is_recorded_singleton"], True),
        (["orphans", 0, "lease_state"], "stale"),
        (["orphans", 0, "extra"], 1),
        (["daemon", "cleanup_class"], "safe_auto"),
        (["ignored", 0, "skip_reason"], "no_lease"),
        (["leases", 0, "holder"], "zombie"),
        (["findings", 0, "id"], "made_up"),
        (["findings", 0, "remediation"], {}),
        (["reset_result", "swept", 0, "cleanup_path"], "sigquit"),
        (["reset_result", "swept", 0, "reason"], "third_party"),
        (["reset_result", "failed", 0, "failure_reason"], "bad_luck"),
        (["reset_result", "leases_removed", 0, "reason"], "holder_alive"),
        (["scan", "duration_ms"], -1),
    ],
)
def test_the_schema_refuses_what_doctor_never_prints(path: list[Any], value: Any) -> None:
    found = pile()
    doc = build(DoctorView(survey=found, generated_at=NOW, session=SESSION))
    doc["reset_result"] = reset_result(found.records)
    assert doc["orphans"][0]["cleanup_class"] == "safe_auto"
    assert doc["orphans"][1]["cleanup_class"] == "operator_required"
    assert errors(_with(doc, path, value)) != []


def test_reset_result_is_optional_but_its_four_arrays_are_not() -> None:
    doc = build(DoctorView(survey=pile(), generated_at=NOW, session=None))
    assert "reset_result" not in doc and errors(doc) == []
    doc["reset_result"] = {"swept": [], "skipped": [], "failed": []}
    assert errors(doc) != []


def test_a_lease_token_value_never_reaches_the_document() -> None:
    found = pile()
    doc = build(DoctorView(survey=found, generated_at=NOW, session=SESSION))
    text = json.dumps(doc)
    assert all(e.lease is None or e.lease.token not in text for e in found.ctx.leases)
    assert make_lease().token not in text


def test_the_doctor_schema_embeds_the_ledger_event_schema_unchanged() -> None:
    """``history`` items are ledger events: the copy inside the doctor schema may not drift."""
    import re

    root = Path(__file__).parent.parent / "protocol"
    doctor_schema = json.loads((root / "doctor-v2.schema.json").read_text())
    ledger = json.loads((root / "ledger-v1.schema.json").read_text())

    def prefixed(obj: Any) -> Any:
        return json.loads(re.sub(r'"#/\$defs/([A-Za-z_]+)"', r'"#/$defs/ledger_\1"', json.dumps(obj)))

    embedded = dict(doctor_schema["$defs"]["ledgerEvent"])
    embedded.pop("description")
    expected = {
        k: v for k, v in ledger.items() if k not in ("$schema", "$id", "$defs", "title", "description")
    }
    assert embedded == prefixed(expected)
    for name, definition in ledger["$defs"].items():
        assert doctor_schema["$defs"][f"ledger_{name}"] == prefixed(definition)


def test_no_fix_repeats_a_command_that_cannot_change_it() -> None:
    """A daemon whose owner this user cannot see would fail --reset --force again (missing_pid): its
    finding names the look that shows the owner; a container's daemon gets no finding at all."""
    unseen = make_obs(make_report(instance_id="inst-unseen-01", port=PORT + 1), port=PORT + 1, pid=None)
    contained = replace(
        make_obs(make_report(instance_id="inst-contained", pid=3, port=PORT + 2), port=PORT + 2, pid=PID),
        reported_process=ProcessFacts(exists=False),
    )
    found = survey_of(make_ctx(), unseen, contained)
    doc = build(DoctorView(survey=found, generated_at=NOW, session=None))
    assert errors(doc) == []
    by_id = {f["id"]: f for f in doc["findings"]}
    assert "orphans_operator_required" not in by_id
    assert (
        by_id["owner_not_visible"]["remediation"]["command"] == f"sudo lsof -nP -iTCP:{PORT + 1} -sTCP:LISTEN"
    )
    assert all("--force" not in f["remediation"]["command"] for f in doc["findings"])
