"""Families as data (ADR 0019): declaring one, refusing overlaps, the one range check, reading a host's
family from ``SYNCLEASE_FAMILIES``, and judging another family's listeners with the same table."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import synclease
from synclease.core import family as families
from synclease.core.classify import classify
from synclease.core.codec import CodecError
from synclease.core.constants import DASHBOARD_PORT_RANGE, SYNC_PORT_RANGE
from synclease.core.errors import BadInputError
from synclease.core.family import DASHBOARD_FAMILY, SYNC_FAMILY, FamilyError, declare_family, declared
from synclease.core.fleet import CleanupClass, SkipReason
from synclease.core.health import HealthReport
from synclease.core.lease import LeaseEntry, decode_lease, encode_lease
from synclease.core.record import replace
from synclease.services.families import load_declared, module_names
from tests.test_classify import NOW, PID, START, entry_of, make_ctx, make_lease, make_obs, make_report

#: A family the tests declare, far from every real range (the registry lives for the process).
PROBE = declare_family("test-probe", range(9610, 9620), idle_retirement_seconds=60.0)
HOSTCLI_DIR = Path(__file__).resolve().parent.parent / "examples" / "hostcli"


# --- declaring ----------------------------------------------------------------------------------


def test_the_built_in_families_are_declared_through_the_public_call() -> None:
    assert synclease.declare_family is declare_family
    assert declared()[:2] == (SYNC_FAMILY, DASHBOARD_FAMILY)
    assert (SYNC_FAMILY.port_range, DASHBOARD_FAMILY.port_range) == (SYNC_PORT_RANGE, DASHBOARD_PORT_RANGE)
    assert SYNC_FAMILY.lease_dir == "leases/sync" and SYNC_FAMILY.health_path == "/api/health"
    assert DASHBOARD_FAMILY.idle_retirement_seconds is None  # a dashboard serves until stopped


@pytest.mark.parametrize(
    ("ports", "named"),
    [
        (range(9440, 9460), "sync"),
        (range(9300, 9301), "dashboard"),
        (range(9000, 10000), "sync"),
        (range(9619, 9625), "test-probe"),
    ],
)
def test_a_range_that_meets_a_declared_one_is_refused_naming_it(ports: range, named: str) -> None:
    with pytest.raises(FamilyError) as caught:
        declare_family("test-overlap", ports, idle_retirement_seconds=1.0)
    line = caught.value.one_line()
    assert f"overlaps the {named} family's" in line and "\n" not in line
    assert caught.value.exit_code == 2  # bad input
    assert families.family_named("test-overlap") is None


@pytest.mark.parametrize(
    ("name", "ports", "idle", "path", "what"),
    [
        ("Bad Name", range(9700, 9701), 1.0, "/api/health", "not a short lowercase word"),
        ("test-empty", range(9700, 9700), 1.0, "/api/health", "empty or outside"),
        ("test-low", range(80, 81), 1.0, "/api/health", "empty or outside"),
        ("test-step", range(9700, 9710, 2), 1.0, "/api/health", "empty or outside"),
        ("test-idle", range(9700, 9701), 0.0, "/api/health", "must be positive"),
        ("test-path", range(9700, 9701), 1.0, "api health", "not a plain absolute path"),
    ],
)
def test_a_bad_declaration_is_one_clear_line(
    name: str, ports: range, idle: float, path: str, what: str
) -> None:
    with pytest.raises(FamilyError, match=what):
        declare_family(name, ports, idle_retirement_seconds=idle, health_path=path)


def test_declaring_the_same_family_again_is_a_no_op_but_a_different_one_is_refused() -> None:
    assert declare_family("test-probe", range(9610, 9620), idle_retirement_seconds=60.0) is PROBE
    with pytest.raises(FamilyError, match="already declared differently"):
        declare_family("test-probe", range(9610, 9621), idle_retirement_seconds=60.0)


def test_the_family_owns_its_range_and_nothing_else() -> None:
    assert PROBE.owns(9610) and PROBE.owns(9619) and not PROBE.owns(9620) and not PROBE.owns(9609)
    assert PROBE.owns_range(range(9612, 9615)) and PROBE.owns_range(range(0))
    assert not PROBE.owns_range(range(9605, 9615)) and not PROBE.owns_range(range(9610, 9620, 2))
    assert families.family_of_port(9615) is PROBE and families.family_of_port(9407) is SYNC_FAMILY
    assert families.family_of_port(9999) is None
    with pytest.raises(ValueError, match="not inside the test-probe family range"):
        PROBE.check_range(range(9400, 9410))


def test_an_unknown_family_name_lists_the_declared_ones() -> None:
    with pytest.raises(FamilyError, match=r"no daemon family named 'nope' .*sync, dashboard"):
        families.get_family("nope")


# --- records of a declared family ---------------------------------------------------------------


def test_a_lease_of_a_declared_family_decodes_inside_its_range_only() -> None:
    lease = make_lease(family="test-probe", port=9611)
    assert decode_lease(encode_lease(lease)) == lease
    with pytest.raises(CodecError, match="port"):
        decode_lease(encode_lease(replace(lease, port=9407)))


def test_a_lease_of_an_undeclared_family_is_not_trusted() -> None:
    data = encode_lease(make_lease()).replace(b'"family": "sync"', b'"family": "nobody-knows"')
    assert b"nobody-knows" in data
    with pytest.raises(CodecError, match="family"):
        decode_lease(data)


# --- the same table for another family ----------------------------------------------------------


def _probe_report(**changes: object) -> HealthReport:
    return replace(make_report(family="test-probe", sync_like=False, port=9611), **changes)


def _probe_ctx(*entries: LeaseEntry) -> object:
    return make_ctx(*entries, family=PROBE, port_range=PROBE.port_range)


def test_a_daemon_of_the_governed_family_with_an_expired_lease_is_safe_auto() -> None:
    lease = make_lease(family="test-probe", port=9611)
    record = classify(
        make_obs(_probe_report(), port=9611),
        make_ctx(entry_of(lease), family=PROBE, port_range=PROBE.port_range),
    )
    assert (record.cleanup_class, record.skip_reason) == (CleanupClass.SAFE_AUTO, None)
    assert record.daemon_family == "test-probe"


def test_its_live_lease_is_lease_live_and_a_mismatch_is_a_mismatch() -> None:
    lease = make_lease(family="test-probe", port=9611, renewed_at=NOW - timedelta(seconds=1))
    ctx = make_ctx(entry_of(lease), family=PROBE, port_range=PROBE.port_range)
    assert classify(make_obs(_probe_report(), port=9611), ctx).skip_reason is SkipReason.LEASE_LIVE
    stale = make_ctx(
        entry_of(make_lease(family="test-probe", port=9611)), family=PROBE, port_range=PROBE.port_range
    )
    other_start = make_obs(_probe_report(), port=9611, start=START + 5)
    assert classify(other_start, stale).skip_reason is SkipReason.IDENTITY_MISMATCH


@pytest.mark.parametrize("family", ["sync", "dashboard", "somebody-else"])
def test_a_listener_of_another_family_in_a_host_range_is_never_touched(family: str) -> None:
    report = _probe_report(family=family, sync_like=family == "sync")
    ctx = make_ctx(
        entry_of(make_lease(family="test-probe", port=9611)), family=PROBE, port_range=PROBE.port_range
    )
    record = classify(make_obs(report, port=9611), ctx)
    assert (record.cleanup_class, record.skip_reason) == (CleanupClass.NEVER_TOUCH, SkipReason.OTHER_FAMILY)


def test_a_host_family_listener_in_the_sync_range_is_other_family() -> None:
    record = classify(
        make_obs(make_report(family="test-probe", sync_like=False)), make_ctx(entry_of(make_lease()))
    )
    assert (record.cleanup_class, record.skip_reason) == (CleanupClass.NEVER_TOUCH, SkipReason.OTHER_FAMILY)


def test_a_legacy_report_without_a_family_speaks_only_for_sync() -> None:
    legacy = _probe_report(family=None, sync_like=True, pid=PID)
    ctx = make_ctx(
        entry_of(make_lease(family="test-probe", port=9611)), family=PROBE, port_range=PROBE.port_range
    )
    assert classify(make_obs(legacy, port=9611), ctx).skip_reason is SkipReason.UNRESPONSIVE


def test_the_context_refuses_ports_outside_its_family() -> None:
    with pytest.raises(ValueError, match="not inside the test-probe family range"):
        make_ctx(family=PROBE)  # the sync range is not the probe family's


# --- SYNCLEASE_FAMILIES -------------------------------------------------------------------------


def test_module_names_are_read_and_bad_ones_refused() -> None:
    assert module_names(" a.b , c,,") == ["a.b", "c"]
    assert module_names("") == []
    for raw in ("a b", "a;b", "../x", ",".join(f"m{i}" for i in range(17))):
        with pytest.raises(BadInputError, match="SYNCLEASE_FAMILIES="):
            module_names(raw)


def test_a_module_that_cannot_be_imported_is_one_line() -> None:
    with pytest.raises(BadInputError, match="names 'no_such_family_module', which could not be imported"):
        load_declared({"SYNCLEASE_FAMILIES": "no_such_family_module"})


def test_the_cli_learns_the_host_family_from_the_environment(tmp_path: Path) -> None:
    env = {"SYNCLEASE_HOME": str(tmp_path / "root"), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "synclease", "auth", "doctor", "--family", "hostcli-watch", "--json"]
    unknown = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.count("\n") == 1 and "no daemon family named 'hostcli-watch'" in unknown.stderr
    known_env = {**env, "SYNCLEASE_FAMILIES": "hostcli_families", "PYTHONPATH": str(HOSTCLI_DIR)}
    (tmp_path / "root").mkdir(mode=0o700)
    known = subprocess.run(cmd, env=known_env, capture_output=True, text=True, timeout=60)
    assert known.returncode == 0, known.stderr
    assert '"ports_scanned": 10' in known.stdout  # 9520-9529, hostcli's own range


# --- serve refuses before it touches anything ---------------------------------------------------


@pytest.mark.parametrize(
    "family",
    [
        SYNC_FAMILY,
        DASHBOARD_FAMILY,
        replace(PROBE, idle_retirement_seconds=1.0),  # not what was declared under that name
        replace(PROBE, name="test-never-declared"),
    ],
    ids=["sync", "dashboard", "altered", "undeclared"],
)
def test_serve_runs_only_a_family_the_host_declared(family: families.Family, tmp_path: Path) -> None:
    with pytest.raises(FamilyError, match="declared"):
        synclease.serve(family, home=tmp_path / "root")
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("version", ["", "x" * 65, "1.0\n"])
def test_serve_refuses_a_version_the_lease_could_not_carry(version: str, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="is not a version"):
        synclease.serve(PROBE, home=tmp_path / "root", version=version)
    assert not (tmp_path / "root").exists()
