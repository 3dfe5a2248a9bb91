"""The pure fleet engine: health parsing, the classification table row by row, and orphan leases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synclease.core.classify import TABLE, classify, judge_orphan_lease, unclaimed_leases
from synclease.core.evidence import find_lease
from synclease.core.fleet import (
    SWEEP_VETOES,
    CleanupClass,
    FleetContext,
    IdentityRecord,
    IdentitySource,
    LeaseStatus,
    LeaseVerdictReason,
    Listener,
    Observation,
    SkipReason,
)
from synclease.core.health import HealthReport, parse_health
from synclease.core.identity import HolderVerdict, ProcessFacts
from synclease.core.lease import LeaseEntry, LeaseRecord, SingletonRecord
from synclease.core.record import replace

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SCOPE = "0123456789abcdef"
OTHER_SCOPE = "fedcba9876543210"
ROOT = "/home/dev/.local/state/synclease"
START = 1_770_000_000.25
PID = 4242
PORT = 9407
IID = "inst-stale-0001"
TTL = 10.0

SAFE = CleanupClass.SAFE_AUTO
OPERATOR = CleanupClass.OPERATOR_REQUIRED
NEVER = CleanupClass.NEVER_TOUCH


def make_lease(**changes: Any) -> LeaseRecord:
    base = LeaseRecord(
        family="sync",
        instance_id=IID,
        scope_id=SCOPE,
        daemon_root=ROOT,
        pid=PID,
        process_start_time=START,
        port=PORT,
        package_version="3.2.2",
        protocol_version=1,
        acquired_at=NOW - timedelta(hours=2),
        renewed_at=NOW - timedelta(minutes=5),
        ttl_seconds=TTL,
        state="serving",
        token="t" * 32,
    )
    return replace(base, **changes)


def entry_of(lease: LeaseRecord) -> LeaseEntry:
    return LeaseEntry(Path(f"/r/leases/sync/{lease.instance_id}.json"), lease.instance_id, lease)


def unreadable(instance_id: str = IID, problem: str = "not_json") -> LeaseEntry:
    return LeaseEntry(Path(f"/r/leases/sync/{instance_id}.json"), instance_id, None, problem)


def make_report(**changes: Any) -> HealthReport:
    base = HealthReport(
        family="sync",
        sync_like=True,
        instance_id=IID,
        scope_id=SCOPE,
        daemon_root=ROOT,
        pid=PID,
        port=PORT,
        process_start_time=START,
        package_version="3.2.2",
        protocol_version=1,
        lease_state="serving",
        auth_scope="user:dev",
        server_url="https://sync.example.test",
        queue_db_path=f"{ROOT}/queue/events.db",
    )
    return replace(base, **changes)


def make_obs(
    health: HealthReport | None = None,
    *,
    port: int = PORT,
    pid: int | None = PID,
    start: float | None = START,
    error: str | None = None,
) -> Observation:
    return Observation(Listener(port, pid, start), health, error)


def make_ctx(*entries: LeaseEntry, singleton: SingletonRecord | None = None, **changes: Any) -> FleetContext:
    base = FleetContext(scope_id=SCOPE, daemon_root=ROOT, now=NOW, leases=entries, singleton=singleton)
    return replace(base, **changes)


def singleton_of(instance_id: str = IID, pid: int = PID, port: int = PORT) -> SingletonRecord:
    return SingletonRecord("sync", instance_id, 3, pid, port, "3.2.4", 1, NOW - timedelta(hours=1))


def stale_case() -> tuple[Observation, FleetContext]:
    """Every proof holds: an expired lease, a matching live self-report, the OS agrees."""
    return make_obs(make_report()), make_ctx(entry_of(make_lease()))


def verdict(obs: Observation, ctx: FleetContext) -> tuple[CleanupClass, SkipReason | None]:
    record = classify(obs, ctx)
    return record.cleanup_class, record.skip_reason


# --- parse_health -------------------------------------------------------------------------------


def full_health_doc() -> dict[str, Any]:
    return {
        "daemon_family": "sync",
        "instance_id": IID,
        "scope_id": SCOPE,
        "daemon_root": ROOT,
        "pid": PID,
        "port": PORT,
        "process_start_time": START,
        "package_version": "3.2.4",
        "protocol_version": 1,
        "started_at": "2026-03-01T10:00:00.000000Z",
        "lease": {
            "state": "serving",
            "renewed_at": "2026-03-01T11:59:58.000000Z",
            "expires_at": "2026-03-01T12:00:08.000000Z",
        },
        "sync": {"running": True, "queue_depth": 3, "last_sync": None, "consecutive_failures": 0},
        "auth_scope": None,
        "server_url": None,
        "queue_db_path": None,
    }


def test_parse_health_reads_the_contract() -> None:
    report = parse_health(full_health_doc())
    assert report is not None
    assert report.sync_like and report.family == "sync"
    assert (report.instance_id, report.pid, report.port) == (IID, PID, PORT)
    assert report.process_start_time == START
    assert report.lease_state == "serving"
    assert report.lease_renewed_at == datetime(2026, 3, 1, 11, 59, 58, tzinfo=UTC)
    assert report.sync_running is True and report.queue_depth == 3 and report.last_sync is None
    assert report.auth_scope is None


@pytest.mark.parametrize("doc", [None, [], "sync", 3, [{"daemon_family": "sync"}]])
def test_parse_health_refuses_non_objects(doc: object) -> None:
    assert parse_health(doc) is None


def test_parse_health_drops_wrong_typed_fields_only() -> None:
    doc = full_health_doc() | {
        "pid": "4242",
        "port": True,
        "process_start_time": float("nan"),
        "protocol_version": 1.0,
        "instance_id": ["x"],
        "started_at": "yesterday",
        "lease": "serving",
        "sync": {"running": "yes", "queue_depth": -1},
        "daemon_root": "x" * 10_000,
    }
    report = parse_health(doc)
    assert report is not None
    assert report.pid is None and report.port is None and report.process_start_time is None
    assert report.protocol_version is None and report.instance_id is None and report.started_at is None
    assert report.lease_state is None and report.sync_running is None and report.queue_depth is None
    assert report.daemon_root is None
    assert report.scope_id == SCOPE and report.sync_like  # the family alone makes it sync-like


@pytest.mark.parametrize(
    ("doc", "sync_like"),
    [
        ({"protocol_version": 1, "package_version": "3.2.2"}, True),  # legacy: no family, both versions
        ({"daemon_family": None, "protocol_version": 1, "package_version": "3.2.2"}, True),
        ({"protocol_version": 1}, False),
        ({"package_version": "3.2.2"}, False),
        ({"protocol_version": "1", "package_version": "3.2.2"}, False),
        ({"daemon_family": "dashboard", "protocol_version": 1, "package_version": "3.2.2"}, False),
        ({"daemon_family": 7, "protocol_version": 1, "package_version": "3.2.2"}, False),
        ({"status": "ok"}, False),
    ],
)
def test_sync_like(doc: dict[str, Any], sync_like: bool) -> None:
    report = parse_health(doc)
    assert report is not None and report.sync_like is sync_like


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30,
)
health_keys = st.sampled_from([*sorted(full_health_doc()), "lease", "sync", "project"])


@given(st.dictionaries(health_keys, json_values, max_size=12) | json_values)
def test_parse_health_never_raises(doc: object) -> None:
    report = parse_health(doc)
    assert report is None or isinstance(report, HealthReport)


# --- the table, row by row ----------------------------------------------------------------------


def test_table_has_a_row_per_reason_and_one_for_safe_auto() -> None:
    reasons = [row.reason for row in TABLE]
    assert sorted(r for r in reasons if r) == sorted(r for r in SkipReason if r not in SWEEP_VETOES)
    assert (TABLE[-1].cleanup_class, TABLE[-1].reason) == (SAFE, None)
    assert len(TABLE) == 13


def test_row11_safe_auto_when_every_proof_holds() -> None:
    record = classify(*stale_case())
    assert (record.cleanup_class, record.skip_reason) == (SAFE, None)
    assert record.lease_state is LeaseStatus.EXPIRED and record.lease_present
    assert record.self_report_matches_lease is True and record.self_report_matches_listener is True
    assert record.identity_source is IdentitySource.SELF_REPORT and not record.is_recorded_singleton
    assert record.mismatches == ()


@pytest.mark.parametrize("port", [9399, 9450, 8080, 9300])
def test_row1_out_of_range(port: int) -> None:
    obs, ctx = stale_case()
    lease = make_lease(port=9449)  # the codec bounds a lease port to the family range
    moved = make_obs(make_report(port=port), port=port)
    assert verdict(moved, make_ctx(entry_of(lease))) == (NEVER, SkipReason.OUT_OF_RANGE)
    assert verdict(replace(obs, listener=Listener(port, PID, START)), ctx) == (NEVER, SkipReason.OUT_OF_RANGE)


def test_row1_out_of_the_configured_sub_range_even_when_provably_stale() -> None:
    obs, ctx = stale_case()
    assert verdict(obs, replace(ctx, port_range=range(9420, 9430))) == (NEVER, SkipReason.OUT_OF_RANGE)


def test_context_refuses_a_range_wider_than_the_family() -> None:
    with pytest.raises(ValueError, match="not inside"):
        make_ctx(port_range=range(9300, 9450))


def test_row2_other_family_even_with_a_lease_on_the_port() -> None:
    dashboard = HealthReport(family="dashboard", pid=PID, port=PORT, project="/src/app")
    record = classify(make_obs(dashboard), make_ctx(entry_of(make_lease())))
    assert (record.cleanup_class, record.skip_reason) == (NEVER, SkipReason.OTHER_FAMILY)
    assert record.daemon_family == "dashboard"


@pytest.mark.parametrize(
    "health",
    [None, HealthReport(), HealthReport(protocol_version=1), HealthReport(package_version="9.9")],
    ids=["no-answer", "other-json", "only-protocol", "only-package"],
)
def test_row3_third_party(health: HealthReport | None) -> None:
    record = classify(make_obs(health, error="http_404" if health is None else None), make_ctx())
    assert (record.cleanup_class, record.skip_reason) == (NEVER, SkipReason.THIRD_PARTY)
    assert record.identity_source is IdentitySource.LISTENER and record.lease_state is LeaseStatus.MISSING


@pytest.mark.parametrize(
    "listener",
    [Listener(PORT, PID + 1, START), Listener(PORT, PID, START + 5)],
    ids=["other-pid", "pid-reused"],
)
def test_row3_a_lease_naming_the_port_but_not_this_process_is_no_lease_for_it(listener: Listener) -> None:
    """The lease's holder is gone and a third party took its port: never_touch, never --force-able."""
    obs = Observation(listener, None, "http_404")
    assert verdict(obs, make_ctx(entry_of(make_lease()))) == (NEVER, SkipReason.THIRD_PARTY)


def test_row4_recorded_singleton_is_never_a_candidate() -> None:
    obs, ctx = stale_case()
    record = classify(obs, replace(ctx, singleton=singleton_of()))
    assert (record.cleanup_class, record.skip_reason) == (NEVER, SkipReason.RECORDED_SINGLETON)
    assert record.is_recorded_singleton


def test_row4_singleton_recognised_by_os_pid_and_port_without_a_self_report() -> None:
    obs = make_obs(None, error="timeout")
    ctx = make_ctx(entry_of(make_lease()), singleton=singleton_of(instance_id="inst-other-0002"))
    assert verdict(obs, ctx) == (NEVER, SkipReason.RECORDED_SINGLETON)


def test_row4_a_singleton_of_another_instance_and_process_does_not_shield() -> None:
    obs, ctx = stale_case()
    ctx = replace(ctx, singleton=singleton_of(instance_id="inst-other-0002", pid=PID + 1, port=9400))
    assert verdict(obs, ctx) == (SAFE, None)


def test_row5_missing_pid() -> None:
    _, ctx = stale_case()
    record = classify(make_obs(make_report(), pid=None, start=None), ctx)
    assert (record.cleanup_class, record.skip_reason) == (OPERATOR, SkipReason.MISSING_PID)
    assert record.pid is None


def test_an_unread_other_root_is_cross_root_whether_or_not_the_os_names_the_pid() -> None:
    obs = make_obs(make_report(scope_id=OTHER_SCOPE), pid=None, start=None)
    assert verdict(obs, make_ctx()) == (OPERATOR, SkipReason.CROSS_ROOT)


def test_row6_cross_root() -> None:
    obs = make_obs(make_report(scope_id=OTHER_SCOPE, daemon_root="/home/other/.synclease"))
    record = classify(obs, make_ctx())
    assert (record.cleanup_class, record.skip_reason) == (OPERATOR, SkipReason.CROSS_ROOT)
    assert record.scope_id == OTHER_SCOPE


def test_row6_cross_root_by_daemon_root_when_no_scope_is_reported() -> None:
    obs = make_obs(make_report(scope_id=None, daemon_root="/home/other/.synclease"))
    assert verdict(obs, make_ctx(entry_of(make_lease()))) == (OPERATOR, SkipReason.CROSS_ROOT)


def test_row6_cross_root_comes_before_no_lease_and_before_any_lease_of_ours() -> None:
    obs = make_obs(make_report(scope_id=OTHER_SCOPE))
    assert verdict(obs, make_ctx(entry_of(make_lease()))) == (OPERATOR, SkipReason.CROSS_ROOT)


def test_row7_no_lease() -> None:
    record = classify(make_obs(make_report()), make_ctx())
    assert (record.cleanup_class, record.skip_reason) == (OPERATOR, SkipReason.NO_LEASE)
    assert record.lease_present is False and record.lease_state is LeaseStatus.MISSING


def test_row7_legacy_daemon_with_versions_and_no_lease() -> None:
    legacy = parse_health({"status": "ok", "protocol_version": 1, "package_version": "3.2.3"})
    assert legacy is not None
    unrelated = make_lease(instance_id="inst-unrelated-1", port=9411, pid=PID + 7)
    record = classify(make_obs(legacy), make_ctx(entry_of(unrelated)))
    assert (record.cleanup_class, record.skip_reason) == (OPERATOR, SkipReason.NO_LEASE)
    assert record.package_version == "3.2.3" and record.identity_source is IdentitySource.SELF_REPORT


def test_row7_self_report_naming_an_instance_with_no_lease_file() -> None:
    obs = make_obs(make_report(instance_id="inst-vanished-9"))
    assert verdict(obs, make_ctx(entry_of(make_lease()))) == (OPERATOR, SkipReason.NO_LEASE)


@pytest.mark.parametrize(
    ("health", "error"),
    [(None, "timeout"), (None, "connection_closed"), (HealthReport(), None)],
    ids=["timeout", "closed", "unintelligible"],
)
def test_row8_unresponsive(health: HealthReport | None, error: str | None) -> None:
    record = classify(make_obs(health, error=error), make_ctx(entry_of(make_lease())))
    assert (record.cleanup_class, record.skip_reason) == (OPERATOR, SkipReason.UNRESPONSIVE)
    assert record.identity_source is IdentitySource.LEASE and record.instance_id == IID
    assert record.health_error == error and record.lease_state is LeaseStatus.EXPIRED


def test_row8_unresponsive_when_the_os_pid_is_known_but_its_start_time_is_not() -> None:
    obs = make_obs(None, start=None, error="timeout")
    assert verdict(obs, make_ctx(entry_of(make_lease()))) == (OPERATOR, SkipReason.UNRESPONSIVE)


MISMATCHES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    # (report changes, lease changes, listener changes)
    "report-port": ({"port": PORT + 1}, {}, {}),
    "report-start": ({"process_start_time": START + 1}, {}, {}),
    "report-start-missing": ({"process_start_time": None}, {}, {}),
    "report-scope-missing": ({"scope_id": None}, {}, {}),
    "report-family-missing": ({"family": None}, {}, {}),
    "lease-pid": ({}, {"pid": PID + 1}, {}),
    "lease-port": ({}, {"port": PORT + 1}, {}),
    "lease-start": ({}, {"process_start_time": START + 1}, {}),
    "lease-scope": ({}, {"scope_id": OTHER_SCOPE}, {}),
    "lease-root": ({}, {"daemon_root": "/elsewhere"}, {}),
    "os-start": ({}, {}, {"start": START + 1}),
    "os-start-unreadable": ({}, {}, {"start": None}),
    "os-start-beyond-tolerance": ({}, {}, {"start": START + 0.06}),
}


@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_row9_identity_mismatch(case: str) -> None:
    report_changes, lease_changes, listener_changes = MISMATCHES[case]
    obs = make_obs(make_report(**report_changes), **listener_changes)
    record = classify(obs, make_ctx(entry_of(make_lease(**lease_changes))))
    assert (record.cleanup_class, record.skip_reason) == (OPERATOR, SkipReason.IDENTITY_MISMATCH)
    assert record.mismatches


def test_row9_start_times_within_tolerance_agree() -> None:
    obs = make_obs(make_report(process_start_time=START + 0.02), start=START - 0.02)
    assert verdict(obs, make_ctx(entry_of(make_lease()))) == (SAFE, None)


def test_row9_legacy_shaped_report_matched_to_a_lease_by_port_lacks_an_instance() -> None:
    obs = make_obs(make_report(instance_id=None))
    record = classify(obs, make_ctx(entry_of(make_lease())))
    assert (record.cleanup_class, record.skip_reason) == (OPERATOR, SkipReason.IDENTITY_MISMATCH)
    assert "instance_id:self_report~lease" in record.mismatches


def test_row9_unreadable_lease_is_never_safe_auto() -> None:
    record = classify(make_obs(make_report()), make_ctx(unreadable()))
    assert (record.cleanup_class, record.skip_reason) == (OPERATOR, SkipReason.IDENTITY_MISMATCH)
    assert record.lease_state is LeaseStatus.UNREADABLE and record.lease_problem == "not_json"
    assert record.lease_present and record.self_report_matches_lease is None


def test_row9_two_files_claiming_one_instance_are_unreadable() -> None:
    entries = (entry_of(make_lease()), unreadable(IID, "bad_name"))
    record = classify(make_obs(make_report()), make_ctx(*entries))
    assert (record.cleanup_class, record.skip_reason) == (OPERATOR, SkipReason.IDENTITY_MISMATCH)
    assert record.lease_problem == "duplicate_instance"


def test_row10_lease_live() -> None:
    obs, _ = stale_case()
    record = classify(obs, make_ctx(entry_of(make_lease(renewed_at=NOW - timedelta(seconds=2)))))
    assert (record.cleanup_class, record.skip_reason) == (OPERATOR, SkipReason.LEASE_LIVE)
    assert record.lease_state is LeaseStatus.LIVE


def test_row10_boundary_exactly_at_expiry_is_live_just_after_is_safe_auto() -> None:
    lease = make_lease(renewed_at=NOW - timedelta(seconds=TTL))
    obs = make_obs(make_report())
    assert verdict(obs, make_ctx(entry_of(lease))) == (OPERATOR, SkipReason.LEASE_LIVE)
    later = make_ctx(entry_of(lease), now=NOW + timedelta(microseconds=1))
    assert verdict(obs, later) == (SAFE, None)


def test_row9_comes_before_row10_a_live_lease_with_another_process() -> None:
    live = make_lease(renewed_at=NOW)
    obs = make_obs(make_report(), start=START + 1)
    assert verdict(obs, make_ctx(entry_of(live))) == (OPERATOR, SkipReason.IDENTITY_MISMATCH)


@pytest.mark.parametrize("version", ["3.2.2", "3.2.3", "3.2.4", "0.0.1", "99.0"])
def test_package_version_is_never_a_skip_reason(version: str) -> None:
    obs = make_obs(make_report(package_version=version))
    ctx = make_ctx(entry_of(make_lease(package_version="3.2.2")))
    record = classify(obs, ctx)
    assert (record.cleanup_class, record.skip_reason) == (SAFE, None)
    assert record.package_version == version


def test_lease_lookup_by_port_prefers_the_latest_renewal() -> None:
    old = make_lease(instance_id="inst-older-0001", renewed_at=NOW - timedelta(hours=1))
    new = make_lease(instance_id="inst-newer-0002", renewed_at=NOW - timedelta(minutes=1))
    found = find_lease(make_obs(None), [entry_of(old), entry_of(new), unreadable("inst-broken-03")])
    assert found is not None and found.instance_id == "inst-newer-0002"


def test_record_to_json_is_plain_json() -> None:
    doc = classify(*stale_case()).to_json()
    assert json.loads(json.dumps(doc)) == doc
    assert doc["cleanup_class"] == "safe_auto" and doc["skip_reason"] is None
    assert doc["lease_renewed_at"] == "2026-03-01T11:55:00.000000Z"
    assert doc["lease_state"] == "expired" and doc["identity_source"] == "self_report"
    assert doc["mismatches"] == []
    assert "token" not in json.dumps(doc)
    required = {
        "daemon_family", "pid", "port", "instance_id", "protocol_version", "package_version", "scope_id",
        "daemon_root", "queue_db_path", "auth_scope", "server_url", "lease_present", "lease_state",
        "lease_renewed_at", "identity_source", "self_report_matches_lease", "self_report_matches_listener",
        "is_recorded_singleton", "cleanup_class", "skip_reason",
    }  # fmt: skip
    assert required <= set(doc)


def test_record_refuses_a_skip_reason_on_safe_auto() -> None:
    record = classify(*stale_case())
    with pytest.raises(ValueError, match="skip_reason"):
        replace(record, skip_reason=SkipReason.LEASE_LIVE)
    with pytest.raises(ValueError, match="skip_reason"):
        replace(record, cleanup_class=OPERATOR)


# --- the property: safe_auto only on full proof -------------------------------------------------

OTHER_ID = "inst-bbbb-0002"


def maybe(draw: st.DrawFn, normal: Any, *alternatives: Any) -> Any:
    """``normal`` most of the time (about 5 in 6), else one of ``alternatives``: the proven case with
    a few of its proofs broken, so both sides of the property are exercised often."""
    if draw(st.integers(0, 5)):
        return normal
    return draw(st.sampled_from(alternatives))


@st.composite
def reports(draw: st.DrawFn) -> HealthReport | None:
    shape = maybe(draw, "sync", None, "dashboard", "legacy", "unintelligible")
    if shape is None:
        return None
    if shape == "unintelligible":
        return HealthReport(pid=PID, port=PORT)
    return HealthReport(
        family=None if shape == "legacy" else shape,
        sync_like=shape in ("sync", "legacy"),
        instance_id=maybe(draw, IID, OTHER_ID, None),
        scope_id=maybe(draw, SCOPE, OTHER_SCOPE, None),
        daemon_root=maybe(draw, ROOT, "/other", None),
        pid=maybe(draw, PID, PID + 1, None),
        port=maybe(draw, PORT, PORT + 1, None),
        process_start_time=maybe(draw, START, START + 0.03, START - 0.04, START + 1.0, None),
        package_version=draw(st.sampled_from(["3.2.2", "3.2.3", "3.2.4"])),
        protocol_version=1,
    )


@st.composite
def lease_entries(draw: st.DrawFn, instance_id: str) -> LeaseEntry | None:
    kind = maybe(draw, "lease", "absent", "unreadable")
    if kind == "absent":
        return None
    if kind == "unreadable":
        return unreadable(instance_id, draw(st.sampled_from(["not_json", "unknown_version", "symlink"])))
    age = maybe(draw, 600.0, 0.0, 5.0, TTL, TTL + 1e-6)
    lease = make_lease(
        instance_id=instance_id,
        scope_id=maybe(draw, SCOPE, OTHER_SCOPE),
        daemon_root=maybe(draw, ROOT, "/other"),
        pid=maybe(draw, PID, PID + 1),
        port=maybe(draw, PORT, PORT + 1),
        process_start_time=maybe(draw, START, START + 0.03, START + 1.0),
        renewed_at=NOW - timedelta(seconds=age),
    )
    return entry_of(lease)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Observation, FleetContext]:
    listener = Listener(
        maybe(draw, PORT, 9399, 9450, PORT + 1),
        maybe(draw, PID, PID + 1, None),
        maybe(draw, START, START + 0.04, START + 0.06, START + 1.0, None),
    )
    entries = [
        e
        for e in (draw(lease_entries(IID)), maybe(draw, None, entry_of(make_lease(instance_id=OTHER_ID))))
        if e
    ]
    singleton = maybe(
        draw,
        None,
        singleton_of(),
        singleton_of(instance_id=OTHER_ID),
        singleton_of(instance_id=OTHER_ID, pid=PID + 1),
        singleton_of(instance_id=OTHER_ID, pid=PID + 1, port=PORT + 1),
    )
    obs = Observation(listener, draw(reports()), None)
    return obs, FleetContext(scope_id=SCOPE, daemon_root=ROOT, now=NOW, leases=entries, singleton=singleton)


def _close(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= 0.05


def every_proof_holds(obs: Observation, ctx: FleetContext) -> bool:
    """The oracle, written from the classification table (ADR 0003) without the classifier's code."""
    report, listener = obs.health, obs.listener
    if obs.port not in ctx.port_range or report is None or report.family != "sync":
        return False
    if listener.pid is None or report.scope_id != ctx.scope_id:
        return False
    lease = next((e.lease for e in ctx.leases if e.instance_id == report.instance_id), None)
    if lease is None or not ctx.now > lease.renewed_at + timedelta(seconds=lease.ttl_seconds):
        return False
    if (lease.scope_id, lease.daemon_root, lease.instance_id) != (
        ctx.scope_id,
        ctx.daemon_root,
        report.instance_id,
    ):
        return False
    if not (report.pid == lease.pid == listener.pid and report.port == lease.port == listener.port):
        return False
    starts = (report.process_start_time, lease.process_start_time, listener.pid_start_time)
    if not (_close(starts[0], starts[1]) and _close(starts[1], starts[2]) and _close(starts[0], starts[2])):
        return False
    single = ctx.singleton
    return single is None or (
        single.instance_id != report.instance_id
        and (single.pid, single.port) != (listener.pid, listener.port)
    )


@settings(max_examples=800, deadline=None)
@given(cases())
def test_safe_auto_if_and_only_if_every_proof_holds(case: tuple[Observation, FleetContext]) -> None:
    obs, ctx = case
    record = classify(obs, ctx)
    proven = every_proof_holds(obs, ctx)
    assert (record.cleanup_class is SAFE) == proven, record
    if obs.port not in ctx.port_range:
        assert record.skip_reason is SkipReason.OUT_OF_RANGE
    if record.lease_state is LeaseStatus.UNREADABLE:
        assert record.cleanup_class is not SAFE
    if record.is_recorded_singleton and obs.port in ctx.port_range:
        assert record.cleanup_class is NEVER


@given(cases())
def test_every_record_serialises(case: tuple[Observation, FleetContext]) -> None:
    record = classify(*case)
    assert isinstance(record, IdentityRecord)
    json.dumps(record.to_json(), allow_nan=False)


# --- leases no listener answers for -------------------------------------------------------------


@pytest.mark.parametrize(
    ("lock_free", "process", "holder", "stale", "reason"),
    [
        (True, ProcessFacts(exists=False), HolderVerdict.DEAD, True, LeaseVerdictReason.HOLDER_DEAD),
        (None, ProcessFacts(exists=False), HolderVerdict.DEAD, True, LeaseVerdictReason.HOLDER_DEAD),
        (True, ProcessFacts(True, START + 30), HolderVerdict.PID_REUSED, True, LeaseVerdictReason.PID_REUSED),
        (False, ProcessFacts(True, START), HolderVerdict.ALIVE, False, LeaseVerdictReason.HOLDER_ALIVE),
        (None, ProcessFacts(True, START), HolderVerdict.ALIVE, False, LeaseVerdictReason.HOLDER_ALIVE),
        (True, ProcessFacts(True, START), HolderVerdict.UNKNOWN, False, LeaseVerdictReason.HOLDER_UNKNOWN),
        (False, ProcessFacts(exists=False), HolderVerdict.UNKNOWN, False, LeaseVerdictReason.HOLDER_UNKNOWN),
        (True, ProcessFacts(True, None), HolderVerdict.UNKNOWN, False, LeaseVerdictReason.HOLDER_UNKNOWN),
    ],
    ids=[
        "dead",
        "dead-no-lock",
        "pid-reused",
        "alive",
        "alive-no-lock",
        "starting",
        "locked",
        "unreadable-pid",
    ],
)
def test_judge_orphan_lease(
    lock_free: bool | None,
    process: ProcessFacts,
    holder: HolderVerdict,
    stale: bool,
    reason: LeaseVerdictReason,
) -> None:
    verdict = judge_orphan_lease(entry_of(make_lease()), lock_free, process, {PORT}, NOW)
    assert (verdict.holder, verdict.stale, verdict.reason) == (holder, stale, reason)
    assert verdict.port_in_use and verdict.pid == PID and verdict.lease_state is LeaseStatus.EXPIRED
    assert json.loads(json.dumps(verdict.to_json()))["reason"] == reason.value


def test_judge_orphan_lease_never_deletes_an_unreadable_record() -> None:
    verdict = judge_orphan_lease(unreadable(problem="unknown_version"), True, ProcessFacts(False), set(), NOW)
    assert not verdict.stale and verdict.reason is LeaseVerdictReason.UNREADABLE
    assert verdict.lease_state is LeaseStatus.UNREADABLE and verdict.problem == "unknown_version"


def test_judge_orphan_lease_reports_a_live_lease_of_a_dead_holder_as_stale() -> None:
    live = make_lease(renewed_at=NOW)
    verdict = judge_orphan_lease(entry_of(live), True, ProcessFacts(False), set(), NOW)
    assert verdict.stale and verdict.lease_state is LeaseStatus.LIVE and not verdict.port_in_use


def test_unclaimed_leases_are_those_no_listener_was_matched_to() -> None:
    claimed, orphan = make_lease(), make_lease(instance_id="inst-orphan-0009", port=9410)
    entries = [entry_of(claimed), entry_of(orphan), unreadable("inst-broken-03")]
    records = [classify(make_obs(make_report()), make_ctx(*entries))]
    assert [e.instance_id for e in unclaimed_leases(records, entries)] == [
        "inst-orphan-0009",
        "inst-broken-03",
    ]


# --- other_pid_namespace (ADR 0017): a sync daemon whose reported PID is not the owner seen here ---


@pytest.mark.parametrize("live_lease", [False, True])
def test_other_pid_namespace_when_the_os_shows_another_pid_than_the_report(live_lease: bool) -> None:
    """The host's view of a daemon started in a container: the OS shows PID+7, it reports PID, and
    PID here is no process (or another one)."""
    lease = make_lease(renewed_at=NOW) if live_lease else make_lease()
    for seen in (ProcessFacts(exists=False), ProcessFacts(True, START + 500.0)):
        for report_pid, os_pid in ((PID, PID + 7), (PID + 1, PID)):
            obs = replace(make_obs(make_report(pid=report_pid), pid=os_pid), reported_process=seen)
            record = classify(obs, make_ctx(entry_of(lease)))
            assert (record.cleanup_class, record.skip_reason) == (NEVER, SkipReason.OTHER_PID_NAMESPACE)


def test_a_reported_pid_alive_here_that_does_not_hold_the_socket_is_identity_mismatch() -> None:
    """Not another namespace: the reported process is here, with its start, but the OS shows another
    PID on its port (a socket passed to another process, issue 19): never safe_auto, never hidden."""
    obs = replace(make_obs(make_report(), pid=PID + 7), reported_process=ProcessFacts(True, START))
    assert verdict(obs, make_ctx(entry_of(make_lease()))) == (OPERATOR, SkipReason.IDENTITY_MISMATCH)


@pytest.mark.parametrize(
    "seen",
    [ProcessFacts(exists=False), ProcessFacts(True, START + 500.0)],
    ids=["no-such-pid-here", "another-process-here"],
)
def test_other_pid_namespace_when_no_owner_is_seen_and_the_reported_pid_is_not_it(seen: ProcessFacts) -> None:
    """A container's view of a daemon on the host: no owner in the table, the reported PID names
    nothing here, or another process."""
    obs = replace(make_obs(make_report(), pid=None, start=None), reported_process=seen)
    for ctx in (make_ctx(entry_of(make_lease())), make_ctx(), make_ctx(scope_id=OTHER_SCOPE)):
        record = classify(obs, ctx)
        assert (record.cleanup_class, record.skip_reason) == (NEVER, SkipReason.OTHER_PID_NAMESPACE)


@pytest.mark.parametrize(
    "seen",
    [None, ProcessFacts(True, START), ProcessFacts(True, None)],
    ids=["not-looked-up", "same-process-here", "unreadable-here"],
)
def test_missing_pid_stays_operator_required_when_the_reported_pid_may_be_it(
    seen: ProcessFacts | None,
) -> None:
    """Another user's daemon: we see its PID, not its socket. Nothing gets weaker or louder."""
    obs = replace(make_obs(make_report(), pid=None, start=None), reported_process=seen)
    assert verdict(obs, make_ctx(entry_of(make_lease()))) == (OPERATOR, SkipReason.MISSING_PID)


def test_other_pid_namespace_needs_a_sync_self_report_in_range() -> None:
    gone = ProcessFacts(exists=False)
    silent = replace(make_obs(None, pid=None, start=None, error="timeout"), reported_process=gone)
    assert verdict(silent, make_ctx(entry_of(make_lease())))[1] is not SkipReason.OTHER_PID_NAMESPACE
    far = make_obs(make_report(port=9300), port=9300, pid=PID + 7)
    assert verdict(far, make_ctx()) == (NEVER, SkipReason.OUT_OF_RANGE)
