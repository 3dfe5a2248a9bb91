"""Expiry and renewal under frozen time: ``expired`` iff ``now > renewed_at + ttl_seconds``.

freezegun patches ``datetime.now`` and ``time.monotonic``; the real :class:`SystemClock` must follow it,
which shows the injected clock is the only source of time the protocol code consults.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from freezegun import freeze_time

from synclease.adapters.clock import SYSTEM_CLOCK, SystemClock
from synclease.core import constants
from synclease.core.clock import Clock, from_wire, to_wire
from synclease.core.lease import LeaseRecord, decode_lease, encode_lease, is_expired

T0 = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def make_lease(now: datetime, ttl: float = constants.LEASE_TTL_SECONDS, **changes: Any) -> LeaseRecord:
    fields: dict[str, Any] = {
        "family": "sync",
        "instance_id": "expiry-0000000001",
        "scope_id": "fedcba9876543210",
        "daemon_root": "/srv/root",
        "pid": 999,
        "process_start_time": 1_900_000_000.0,
        "port": 9410,
        "package_version": "2.0.0",
        "protocol_version": 1,
        "acquired_at": now,
        "renewed_at": now,
        "ttl_seconds": ttl,
        "state": "starting",
        "token": "secret-token",
    }
    fields.update(changes)
    return LeaseRecord(**fields)


# --- the pure rule ------------------------------------------------------------------------------


def test_not_expired_exactly_at_the_boundary() -> None:
    lease = make_lease(T0, ttl=10.0)
    assert lease.expires_at == T0 + timedelta(seconds=10)
    assert not is_expired(lease, T0 + timedelta(seconds=10))


def test_expired_one_microsecond_after_the_boundary() -> None:
    lease = make_lease(T0, ttl=10.0)
    assert is_expired(lease, T0 + timedelta(seconds=10) + TICK)


def test_not_expired_before_or_at_renewal() -> None:
    lease = make_lease(T0, ttl=10.0)
    assert not is_expired(lease, T0)
    assert not is_expired(lease, T0 + timedelta(seconds=9, microseconds=999_999))


def test_a_clock_set_back_does_not_expire_a_lease() -> None:
    lease = make_lease(T0, ttl=10.0)
    assert not is_expired(lease, T0 - timedelta(hours=1))


def test_fractional_ttl_boundary() -> None:
    lease = make_lease(T0, ttl=0.25)
    assert not is_expired(lease, T0 + timedelta(milliseconds=250))
    assert is_expired(lease, T0 + timedelta(milliseconds=250) + TICK)


def test_now_in_another_offset_compares_as_the_same_instant() -> None:
    lease = make_lease(T0, ttl=10.0)
    tokyo = timezone(timedelta(hours=9))
    boundary = (T0 + timedelta(seconds=10)).astimezone(tokyo)
    assert not is_expired(lease, boundary)
    assert is_expired(lease, boundary + TICK)


def test_renewing_moves_the_expiry() -> None:
    lease = make_lease(T0, ttl=10.0)
    later = T0 + timedelta(seconds=8)
    renewed = lease.renewed(later)
    assert renewed.renewed_at == later
    assert renewed.acquired_at == T0
    assert renewed.expires_at == later + timedelta(seconds=10)
    probe = T0 + timedelta(seconds=15)
    assert is_expired(lease, probe)
    assert not is_expired(renewed, probe)


def test_renewal_can_change_state_and_keeps_it_otherwise() -> None:
    lease = make_lease(T0)
    serving = lease.renewed(T0 + timedelta(seconds=1), state="serving")
    assert serving.state == "serving"
    assert serving.renewed(T0 + timedelta(seconds=2)).state == "serving"
    assert serving.renewed(T0 + timedelta(seconds=3), state="draining").state == "draining"
    assert lease.state == "starting"  # records are immutable


def test_expiry_survives_the_wire_format() -> None:
    lease = make_lease(T0, ttl=10.0)
    read_back = decode_lease(encode_lease(lease))
    assert read_back.expires_at == lease.expires_at
    assert not is_expired(read_back, T0 + timedelta(seconds=10))
    assert is_expired(read_back, T0 + timedelta(seconds=10) + TICK)


def test_wire_format_is_utc_with_z_and_microseconds() -> None:
    plus_five = T0.astimezone(timezone(timedelta(hours=5)))
    assert to_wire(plus_five) == "2031-05-06T07:08:09.123456Z"
    assert from_wire("2031-05-06T07:08:09.123456Z") == T0
    with pytest.raises(ValueError, match="no UTC offset"):
        from_wire("2031-05-06T07:08:09.123456")


def test_default_ttl_spans_several_heartbeats() -> None:
    assert constants.LEASE_TTL_SECONDS >= 3 * constants.HEARTBEAT_SECONDS


# --- the real clock under frozen time -----------------------------------------------------------


def test_system_clock_follows_frozen_wall_time() -> None:
    clock: Clock = SystemClock()
    with freeze_time(T0) as frozen:
        assert clock.now() == T0
        assert clock.now().utcoffset() == timedelta(0)
        assert SYSTEM_CLOCK.now() == T0
        frozen.tick(timedelta(seconds=3))
        assert clock.now() == T0 + timedelta(seconds=3)


def test_system_clock_monotonic_follows_frozen_time() -> None:
    clock = SystemClock()
    with freeze_time(T0) as frozen:
        start = clock.monotonic()
        frozen.tick(timedelta(seconds=7.5))
        assert clock.monotonic() - start == pytest.approx(7.5)


def test_lease_written_now_expires_after_ttl_of_frozen_time() -> None:
    clock = SystemClock()
    with freeze_time(T0) as frozen:
        lease = make_lease(clock.now(), ttl=10.0)
        frozen.tick(timedelta(seconds=10))
        assert not is_expired(lease, clock.now())
        frozen.tick(TICK)
        assert is_expired(lease, clock.now())


def test_heartbeat_keeps_the_lease_alive_and_silence_expires_it() -> None:
    clock = SystemClock()
    heartbeat = timedelta(seconds=constants.HEARTBEAT_SECONDS)
    with freeze_time(T0) as frozen:
        lease = make_lease(clock.now(), ttl=constants.LEASE_TTL_SECONDS)
        for _ in range(500):
            frozen.tick(heartbeat)
            assert not is_expired(lease, clock.now())
            lease = decode_lease(encode_lease(lease.renewed(clock.now(), state="serving")))
        assert lease.acquired_at == T0
        assert lease.renewed_at == T0 + 500 * heartbeat
        frozen.tick(timedelta(seconds=constants.LEASE_TTL_SECONDS))
        assert not is_expired(lease, clock.now())
        frozen.tick(TICK)
        assert is_expired(lease, clock.now())


def test_one_late_heartbeat_is_not_death() -> None:
    clock = SystemClock()
    with freeze_time(T0) as frozen:
        lease = make_lease(clock.now(), ttl=constants.LEASE_TTL_SECONDS)
        frozen.tick(timedelta(seconds=2 * constants.HEARTBEAT_SECONDS))  # a missed tick
        assert not is_expired(lease, clock.now())
        lease = lease.renewed(clock.now())
        frozen.tick(timedelta(seconds=constants.LEASE_TTL_SECONDS))
        assert not is_expired(lease, clock.now())


def test_renewal_after_expiry_revives_by_the_rule_only() -> None:
    # The rule is a pure function of the record: a reader that saw the expired record and a reader that
    # sees the renewed one judge differently. Readers must re-read before acting (see lease-v1.md).
    with freeze_time(T0) as frozen:
        lease = make_lease(SYSTEM_CLOCK.now(), ttl=1.0)
        frozen.tick(timedelta(seconds=2))
        assert is_expired(lease, SYSTEM_CLOCK.now())
        assert not is_expired(lease.renewed(SYSTEM_CLOCK.now()), SYSTEM_CLOCK.now())
