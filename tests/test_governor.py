"""The governor's pure decision, every branch, driven by an injected (frozen, then travelled) clock."""

from __future__ import annotations

import time

import pytest
from freezegun import freeze_time

from synclease.adapters.clock import SystemClock
from synclease.core.governor import Action, Decision, Reason, Tick, decide, is_superseded

IDLE = 900.0


def observe(clock: SystemClock, last_activity: float, **overrides: object) -> Tick:
    fields: dict[str, object] = {
        "now": clock.monotonic(),
        "last_activity": last_activity,
        "idle_retirement_seconds": IDLE,
        "in_flight": 0,
        "superseded": False,
        "lease_still_ours": True,
    }
    fields.update(overrides)
    return Tick(**fields)  # type: ignore[arg-type]


def test_fresh_daemon_keeps_serving() -> None:
    with freeze_time("2026-11-26 10:00:00"):
        clock = SystemClock()
        assert decide(observe(clock, clock.monotonic())) == Decision(Action.SERVE)


def test_idle_retirement_happens_exactly_at_the_constant() -> None:
    with freeze_time("2026-11-26 10:00:00") as frozen:
        clock = SystemClock()
        started = clock.monotonic()
        frozen.tick(IDLE - 0.001)
        assert decide(observe(clock, started)).action is Action.SERVE
        frozen.tick(0.001)
        assert decide(observe(clock, started)) == Decision(Action.RETIRE, Reason.IDLE)


def test_activity_resets_the_idle_clock() -> None:
    with freeze_time("2026-11-26 10:00:00") as frozen:
        clock = SystemClock()
        frozen.tick(IDLE - 1)
        recent = clock.monotonic()
        frozen.tick(IDLE - 1)
        assert decide(observe(clock, recent)).action is Action.SERVE


def test_never_idle_while_work_is_in_flight() -> None:
    with freeze_time("2026-11-26 10:00:00") as frozen:
        clock = SystemClock()
        started = clock.monotonic()
        frozen.tick(IDLE * 10)
        assert decide(observe(clock, started, in_flight=1)).action is Action.SERVE


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        ({"superseded": True}, Reason.SUPERSEDED),
        ({"lease_still_ours": False}, Reason.LEASE_REVOKED),
        ({"root_gone": True}, Reason.ROOT_GONE),
        ({"retire_requested": True}, Reason.RETIRE_REQUESTED),
        ({"shutdown_requested": True}, Reason.SHUTDOWN_REQUESTED),
        ({"signalled": True}, Reason.SIGNAL),
    ],
)
def test_reasons_to_leave_drain_first_then_retire(flags: dict[str, object], reason: Reason) -> None:
    with freeze_time("2026-11-26 10:00:00"):
        clock = SystemClock()
        now = clock.monotonic()
        assert decide(observe(clock, now, in_flight=2, **flags)) == Decision(Action.DRAIN, reason)
        assert decide(observe(clock, now, in_flight=0, **flags)) == Decision(Action.RETIRE, reason)


def test_signal_wins_over_other_reasons() -> None:
    clock = SystemClock()
    obs = observe(clock, clock.monotonic(), signalled=True, superseded=True, lease_still_ours=False)
    assert decide(obs).reason is Reason.SIGNAL


def test_superseded_only_by_a_newer_record_of_another_instance() -> None:
    assert is_superseded("other", 5, "me", 4)
    assert not is_superseded("other", 4, "me", 4)  # we were spawned, not yet recorded
    assert not is_superseded("me", 9, "me", 4)
    assert not is_superseded(None, 9, "me", 4)


def test_injected_clock_follows_frozen_wall_and_monotonic_time() -> None:
    with freeze_time("2026-11-26 10:00:00") as frozen:
        clock = SystemClock()
        wall, mono = clock.now(), clock.monotonic()
        frozen.tick(30)
        assert (clock.now() - wall).total_seconds() == 30
        assert clock.monotonic() - mono == 30
        assert time.monotonic() == clock.monotonic()


@pytest.mark.parametrize(
    ("rss", "in_flight", "expected"),
    [
        (300.0, 0, Decision(Action.RETIRE, Reason.MEMORY)),
        (300.0, 1, Decision(Action.SERVE)),  # never with work in flight
        (200.0, 0, Decision(Action.SERVE)),
        (None, 0, Decision(Action.SERVE)),  # unknown memory is no reason
    ],
)
def test_memory_retirement_only_while_idle(rss: float | None, in_flight: int, expected: Decision) -> None:
    with freeze_time("2026-11-26 10:00:00"):
        clock = SystemClock()
        obs = observe(clock, clock.monotonic(), rss_mb=rss, max_rss_mb=256.0, in_flight=in_flight)
        assert decide(obs) == expected
