"""Pure ledger queries with explicit ``now`` values: recent, filters, counts, ended-once, retirement
metrics, the respawn-backoff boundary and the doctor's inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from freezegun import freeze_time

from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.core.ledger import EventKind, LedgerEvent
from synclease.core.ledger_queries import (
    RESPAWN_BACKOFF_FAILURES,
    RESPAWN_BACKOFF_WINDOW,
    SILENT_DEATH_WINDOW,
    START_FAILURES_THRESHOLD,
    START_FAILURES_WINDOW,
    Backoff,
    count,
    doctor_signals,
    for_instance,
    has_ended,
    recent,
    respawn_backoff,
    retirements_by_reason,
)
from synclease.core.reasons import LedgerReason

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)


def ev(
    kind: EventKind,
    ago: timedelta = timedelta(0),
    instance_id: str | None = "inst-aaaa-0001",
    reason: LedgerReason | None = None,
) -> LedgerEvent:
    return LedgerEvent(
        at=NOW - ago,
        kind=kind,
        instance_id=instance_id,
        pid=None,
        port=None,
        package_version=None,
        reason=reason,
    )


def failed(ago: timedelta) -> LedgerEvent:
    return ev(EventKind.START_FAILED, ago, instance_id=None, reason=LedgerReason.STARTUP_FAILED)


# --- recent, filters, counts --------------------------------------------------------------------


def test_recent_is_newest_appended_first_and_bounded() -> None:
    events = [ev(EventKind.SPAWNED, MINUTE * (10 - i), instance_id=f"inst-{i:04d}-xx") for i in range(10)]
    assert recent(events, 3) == [events[9], events[8], events[7]]
    assert recent(events, 100) == events[::-1]
    assert recent(events, 0) == [] and recent(events, -1) == [] and recent([], 5) == []


def test_recent_follows_append_order_even_when_clocks_disagree() -> None:
    later_but_stamped_earlier = ev(EventKind.SERVING, timedelta(hours=2))
    events = [ev(EventKind.SPAWNED), later_but_stamped_earlier]
    assert recent(events, 1) == [later_but_stamped_earlier]


def test_filter_by_instance_prefix() -> None:
    a1 = ev(EventKind.SPAWNED, instance_id="abc-0000-one")
    a2 = ev(EventKind.RETIRED, instance_id="abc-0000-two")
    b = ev(EventKind.SPAWNED, instance_id="xyz-0000-one")
    anonymous = failed(MINUTE)
    events = [a1, b, anonymous, a2]
    assert for_instance(events, "abc") == [a1, a2]
    assert for_instance(events, "abc-0000-two") == [a2]
    assert for_instance(events, "nope") == []
    assert for_instance(events, "") == [a1, b, a2]  # events without an instance never match


def test_count_by_kind_since_is_inclusive() -> None:
    events = [failed(MINUTE * 5), failed(MINUTE * 10), failed(MINUTE * 10 + SECOND), ev(EventKind.SERVING)]
    assert count(events, EventKind.START_FAILED, NOW - MINUTE * 10) == 2
    assert count(events, EventKind.START_FAILED, NOW - timedelta(hours=1)) == 3
    assert count(events, EventKind.SERVING, NOW) == 1
    assert count(events, EventKind.VANISHED, NOW - timedelta(days=9)) == 0


# --- ended once ---------------------------------------------------------------------------------


def test_has_ended_for_each_end_kind_and_only_for_that_instance() -> None:
    iid = "inst-aaaa-0001"
    assert not has_ended([], iid)
    living = [ev(EventKind.SPAWNED), ev(EventKind.SERVING), ev(EventKind.LEASE_REMOVED), failed(MINUTE)]
    assert not has_ended(living, iid)
    for kind in (EventKind.RETIRED, EventKind.REAPED, EventKind.VANISHED):
        assert has_ended([*living, ev(kind)], iid)
        assert not has_ended([*living, ev(kind, instance_id="inst-bbbb-0002")], iid)


# --- metrics ------------------------------------------------------------------------------------


def test_retirements_by_reason() -> None:
    events = [
        ev(EventKind.RETIRED, reason=LedgerReason.IDLE),
        ev(EventKind.RETIRED, reason=LedgerReason.IDLE, ago=timedelta(days=2)),
        ev(EventKind.RETIRED, reason=LedgerReason.SUPERSEDED),
        ev(EventKind.RETIRED),
        ev(EventKind.REAPED, reason=LedgerReason.EXPIRED_LEASE),
    ]
    assert retirements_by_reason(events) == {LedgerReason.IDLE: 2, LedgerReason.SUPERSEDED: 1, None: 1}
    assert retirements_by_reason(events, since=NOW - timedelta(days=1)) == {
        LedgerReason.IDLE: 1,
        LedgerReason.SUPERSEDED: 1,
        None: 1,
    }
    assert retirements_by_reason([]) == {}


# --- respawn backoff ----------------------------------------------------------------------------


def test_backoff_thresholds_are_the_documented_ones() -> None:
    assert (RESPAWN_BACKOFF_FAILURES, RESPAWN_BACKOFF_WINDOW) == (3, timedelta(minutes=10))


def test_exactly_three_failures_within_ten_minutes_back_off() -> None:
    events = [failed(MINUTE * 10), failed(MINUTE * 4), failed(SECOND)]
    decision = respawn_backoff(reversed(events), NOW)
    assert decision == Backoff(active=True, failures=3, until=NOW)  # the oldest leaves the window next


def test_one_of_three_ten_minutes_and_one_second_ago_does_not() -> None:
    events = [failed(MINUTE * 10 + SECOND), failed(MINUTE * 4), failed(SECOND)]
    assert respawn_backoff(reversed(events), NOW) == Backoff(active=False, failures=2)


def test_backoff_ends_when_the_oldest_failure_leaves_the_window() -> None:
    events = [failed(MINUTE * 10), failed(MINUTE * 4), failed(SECOND)]
    assert respawn_backoff(reversed(events), NOW).active
    assert not respawn_backoff(reversed(events), NOW + timedelta(microseconds=1)).active


def test_two_failures_do_not_back_off() -> None:
    assert respawn_backoff(reversed([failed(MINUTE), failed(SECOND)]), NOW) == Backoff(
        active=False, failures=2
    )
    assert respawn_backoff([], NOW) == Backoff(active=False, failures=0)


def test_a_later_serving_clears_the_backoff() -> None:
    events = [failed(MINUTE * 9), failed(MINUTE * 8), failed(MINUTE * 7), ev(EventKind.SERVING, MINUTE * 6)]
    assert respawn_backoff(reversed(events), NOW) == Backoff(active=False, failures=0)


def test_a_serving_before_the_failures_does_not_clear_them() -> None:
    events = [ev(EventKind.SERVING, MINUTE * 9), failed(MINUTE * 3), failed(MINUTE * 2), failed(MINUTE)]
    assert respawn_backoff(reversed(events), NOW).active


def test_failures_after_a_serving_count_again() -> None:
    events = [failed(MINUTE * 9), failed(MINUTE * 8), failed(MINUTE * 7), ev(EventKind.SERVING, MINUTE * 6)]
    events += [failed(MINUTE * 3), failed(MINUTE * 2)]
    assert respawn_backoff(reversed(events), NOW) == Backoff(active=False, failures=2)
    events.append(failed(MINUTE))
    assert respawn_backoff(reversed(events), NOW) == Backoff(
        active=True, failures=3, until=NOW - MINUTE * 3 + MINUTE * 10
    )


def test_more_failures_hold_the_backoff_until_the_third_newest_leaves() -> None:
    events = [failed(MINUTE * m) for m in (9, 8, 7, 6, 1)]
    decision = respawn_backoff(reversed(events), NOW)
    assert decision.active and decision.failures == 5
    assert decision.until == NOW - MINUTE * 7 + RESPAWN_BACKOFF_WINDOW
    assert not respawn_backoff(reversed(events), decision.until + timedelta(microseconds=1)).active
    assert respawn_backoff(reversed(events), decision.until).active


def test_failures_stamped_in_the_future_do_not_count() -> None:
    events = [failed(-MINUTE), failed(-MINUTE * 2), failed(SECOND)]  # a clock stepped back
    assert respawn_backoff(reversed(events), NOW) == Backoff(active=False, failures=1)


def test_backoff_with_a_frozen_wall_clock() -> None:
    events = [failed(MINUTE * 10), failed(MINUTE * 5), failed(MINUTE)]
    with freeze_time(NOW):
        assert respawn_backoff(reversed(events), SYSTEM_CLOCK.now()).active
    with freeze_time(NOW + SECOND):
        assert not respawn_backoff(reversed(events), SYSTEM_CLOCK.now()).active


# --- doctor inputs ------------------------------------------------------------------------------


def test_doctor_windows_are_the_documented_ones() -> None:
    assert SILENT_DEATH_WINDOW == timedelta(hours=24)
    assert (START_FAILURES_THRESHOLD, START_FAILURES_WINDOW) == (3, timedelta(hours=1))


def test_silent_death_is_a_vanished_within_a_day() -> None:
    old = ev(EventKind.VANISHED, timedelta(hours=24) + SECOND, instance_id="inst-old-00001")
    edge = ev(EventKind.VANISHED, timedelta(hours=24), instance_id="inst-edge-0001")
    fresh = ev(EventKind.VANISHED, MINUTE, instance_id="inst-new-00001")
    assert not doctor_signals([old], NOW).silent_death
    signals = doctor_signals([old, edge, ev(EventKind.RETIRED), fresh], NOW)
    assert signals.silent_death
    assert signals.vanished == (fresh, edge)  # newest first


def test_start_failures_is_three_within_an_hour() -> None:
    two = [failed(timedelta(hours=1) + SECOND), failed(MINUTE * 30), failed(MINUTE)]
    signals = doctor_signals(two, NOW)
    assert not signals.start_failures and len(signals.start_failed) == 2
    three = [failed(timedelta(hours=1)), failed(MINUTE * 30), failed(MINUTE)]
    signals = doctor_signals(three, NOW)
    assert signals.start_failures
    assert signals.start_failed == (three[2], three[1], three[0])
    assert not doctor_signals([], NOW).silent_death and not doctor_signals([], NOW).start_failures
