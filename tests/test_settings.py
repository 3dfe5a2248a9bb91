"""Settings from the environment: defaults, overrides, and a clear BadInputError (exit 2) for bad values."""

from __future__ import annotations

import pytest

from synclease.adapters import environment
from synclease.core import constants
from synclease.core.errors import EXIT_USAGE, BadInputError
from synclease.core.record import FrozenRecordError
from synclease.core.settings import KNOWN_FAILPOINTS, Settings, load, parse_port, parse_port_range

TIMING_VARS = [
    "SYNCLEASE_HEARTBEAT_SECONDS",
    "SYNCLEASE_LEASE_TTL_SECONDS",
    "SYNCLEASE_IDLE_RETIREMENT_SECONDS",
]


def bad_input(env: dict[str, str]) -> BadInputError:
    with pytest.raises(BadInputError) as info:
        load(env)
    error = info.value
    assert error.exit_code == EXIT_USAGE
    assert error.hint
    assert "\n" not in error.one_line()
    return error


# --- defaults -----------------------------------------------------------------------------------


def test_empty_environment_gives_the_constants() -> None:
    settings = load({})
    assert settings == Settings()
    assert settings.heartbeat_seconds == constants.HEARTBEAT_SECONDS
    assert settings.lease_ttl_seconds == constants.LEASE_TTL_SECONDS
    assert settings.idle_retirement_seconds == constants.SYNC_DAEMON_IDLE_RETIREMENT_SECONDS
    assert settings.port_range == constants.SYNC_PORT_RANGE
    assert settings.port_hint == constants.SYNC_PORT_RANGE.start
    assert settings.failpoints == frozenset()


def test_empty_and_blank_values_mean_unset() -> None:
    env = dict.fromkeys([*TIMING_VARS, "SYNCLEASE_PORT_RANGE", "SYNCLEASE_PORT_HINT"], "  ")
    assert load(env) == Settings()


def test_settings_are_immutable() -> None:
    with pytest.raises(FrozenRecordError):
        load({}).heartbeat_seconds = 1.0  # type: ignore[misc]


def test_load_without_argument_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCLEASE_HEARTBEAT_SECONDS", "0.5")
    monkeypatch.delenv("SYNCLEASE_LEASE_TTL_SECONDS", raising=False)
    monkeypatch.delenv("SYNCLEASE_PORT_RANGE", raising=False)
    monkeypatch.delenv("SYNCLEASE_PORT_HINT", raising=False)
    monkeypatch.delenv("SYNCLEASE_FAILPOINTS", raising=False)
    assert environment.settings().heartbeat_seconds == 0.5


# --- timing overrides ---------------------------------------------------------------------------


def test_timing_overrides() -> None:
    settings = load(
        {
            "SYNCLEASE_HEARTBEAT_SECONDS": "0.2",
            "SYNCLEASE_LEASE_TTL_SECONDS": " 1.5 ",
            "SYNCLEASE_IDLE_RETIREMENT_SECONDS": "3",
        }
    )
    assert (settings.heartbeat_seconds, settings.lease_ttl_seconds, settings.idle_retirement_seconds) == (
        0.2,
        1.5,
        3.0,
    )


def test_default_ttl_stays_several_heartbeats_when_the_heartbeat_grows() -> None:
    assert load({"SYNCLEASE_HEARTBEAT_SECONDS": "5"}).lease_ttl_seconds == 15.0
    assert load({"SYNCLEASE_HEARTBEAT_SECONDS": "0.1"}).lease_ttl_seconds == constants.LEASE_TTL_SECONDS


def test_explicit_ttl_wins_over_the_derived_default() -> None:
    env = {"SYNCLEASE_HEARTBEAT_SECONDS": "5", "SYNCLEASE_LEASE_TTL_SECONDS": "17"}
    assert load(env).lease_ttl_seconds == 17.0


@pytest.mark.parametrize(
    ("env", "named"),
    [
        # A lease must outlive three heartbeats (one slow tick is no death).
        (
            {"SYNCLEASE_HEARTBEAT_SECONDS": "5", "SYNCLEASE_LEASE_TTL_SECONDS": "7"},
            "SYNCLEASE_LEASE_TTL_SECONDS",
        ),
        # A heartbeat over 8 h once made a lease the daemon's own codec rejected: now refused up front.
        ({"SYNCLEASE_HEARTBEAT_SECONDS": str(9 * 3600)}, "SYNCLEASE_HEARTBEAT_SECONDS"),
        ({"SYNCLEASE_HEARTBEAT_SECONDS": "0.001"}, "SYNCLEASE_HEARTBEAT_SECONDS"),
        ({"SYNCLEASE_LEASE_TTL_SECONDS": str(2 * 24 * 3600)}, "SYNCLEASE_LEASE_TTL_SECONDS"),
        ({"SYNCLEASE_IDLE_RETIREMENT_SECONDS": str(365 * 24 * 3600)}, "SYNCLEASE_IDLE_RETIREMENT_SECONDS"),
        ({"SYNCLEASE_CLAIM_SECONDS": "0.01"}, "SYNCLEASE_CLAIM_SECONDS"),
    ],
)
def test_timings_are_validated_together_and_bounded(env: dict[str, str], named: str) -> None:
    error = bad_input(env)
    assert named in error.one_line() and "\n" not in error.one_line()
    assert error.exit_code == EXIT_USAGE


@pytest.mark.parametrize("name", TIMING_VARS)
@pytest.mark.parametrize("raw", ["abc", "0", "-1", "-0.5", "nan", "NaN", "inf", "-inf", "1e400", "1s", "2,5"])
def test_bad_timing_values_are_bad_input(name: str, raw: str) -> None:
    error = bad_input({name: raw})
    assert name in error.message
    assert repr(raw) in error.message


# --- ports --------------------------------------------------------------------------------------


def test_port_sub_range() -> None:
    settings = load({"SYNCLEASE_PORT_RANGE": "9410-9419"})
    assert settings.port_range == range(9410, 9420)
    assert settings.port_hint == 9410


def test_single_port_range() -> None:
    assert load({"SYNCLEASE_PORT_RANGE": "9433"}).port_range == range(9433, 9434)


def test_whole_family_range_is_allowed() -> None:
    assert load({"SYNCLEASE_PORT_RANGE": "9400-9449"}).port_range == constants.SYNC_PORT_RANGE


@pytest.mark.parametrize(
    "raw",
    [
        "9399-9410",
        "9440-9450",
        "9420-9410",
        "9237-9240",
        "9450",
        "abc",
        "9400-",
        "-9400",
        "9400-94x0",
        "1-65535",
    ],
)
def test_port_range_outside_the_family_is_refused(raw: str) -> None:
    error = bad_input({"SYNCLEASE_PORT_RANGE": raw})
    assert "SYNCLEASE_PORT_RANGE" in error.message
    assert "9400-9449" in error.message


def test_port_hint_inside_the_range() -> None:
    assert load({"SYNCLEASE_PORT_HINT": "9425"}).port_hint == 9425
    env = {"SYNCLEASE_PORT_RANGE": "9410-9419", "SYNCLEASE_PORT_HINT": "9419"}
    assert load(env).port_hint == 9419


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        ({"SYNCLEASE_PORT_HINT": "9450"}, "9400-9449"),
        ({"SYNCLEASE_PORT_HINT": "9300"}, "9400-9449"),
        ({"SYNCLEASE_PORT_HINT": "port"}, "9400-9449"),
        ({"SYNCLEASE_PORT_RANGE": "9410-9419", "SYNCLEASE_PORT_HINT": "9420"}, "9410-9419"),
    ],
)
def test_port_hint_outside_the_range_is_refused(env: dict[str, str], shown: str) -> None:
    error = bad_input(env)
    assert "SYNCLEASE_PORT_HINT" in error.message
    assert shown in error.message


def test_port_parsers_directly() -> None:
    assert parse_port_range("9401-9402", constants.SYNC_PORT_RANGE, "X") == range(9401, 9403)
    assert parse_port("9402", range(9401, 9403), "X") == 9402
    with pytest.raises(BadInputError):
        parse_port_range("9236-9240", constants.DASHBOARD_PORT_RANGE, "X")
    with pytest.raises(BadInputError):
        parse_port("9403", range(9401, 9403), "X")


# --- failpoints ---------------------------------------------------------------------------------


def test_failpoints_are_parsed() -> None:
    settings = load({"SYNCLEASE_FAILPOINTS": " stall_heartbeat , ignore_retire,,"})
    assert settings.failpoints == frozenset({"stall_heartbeat", "ignore_retire"})


def test_every_known_failpoint_is_accepted() -> None:
    assert load({"SYNCLEASE_FAILPOINTS": ",".join(sorted(KNOWN_FAILPOINTS))}).failpoints == KNOWN_FAILPOINTS


def test_unknown_failpoints_are_refused_by_name() -> None:
    error = bad_input({"SYNCLEASE_FAILPOINTS": "stall_heartbeat,explode,melt"})
    assert "explode" in error.message
    assert "melt" in error.message
    assert "stall_heartbeat" not in error.message
