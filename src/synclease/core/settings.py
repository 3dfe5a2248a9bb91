"""Runtime settings: pure parsing of an environment mapping; a bad value is one BadInputError line.

The process environment itself is read by :func:`synclease.adapters.environment.settings`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from synclease.core import constants
from synclease.core.errors import BadInputError
from synclease.core.record import field, record

KNOWN_FAILPOINTS = frozenset(
    {"stall_heartbeat", "ignore_retire", "ignore_sigterm", "no_pidfd", "no_sock_diag", "no_kernel_table"}
)


@record
class Settings:
    heartbeat_seconds: float = constants.HEARTBEAT_SECONDS
    lease_ttl_seconds: float = constants.LEASE_TTL_SECONDS
    idle_retirement_seconds: float = constants.SYNC_DAEMON_IDLE_RETIREMENT_SECONDS
    port_hint: int = constants.SYNC_PORT_RANGE.start
    #: The ports this process may bind and scan: the family range, or a sub-range of it (tests).
    port_range: range = constants.SYNC_PORT_RANGE
    failpoints: frozenset[str] = field(default_factory=frozenset)
    #: How long an upload batch stays claimed by one daemon before another may re-send it.
    claim_seconds: float = 30.0
    #: An idle daemon whose resident memory passes this retires (the next CLI call spawns a fresh one).
    max_rss_mb: float = constants.MAX_RSS_MB
    #: ``work_stalled``: logged in, events queued, and no successful upload for longer than this.
    stall_seconds: float = constants.STALL_SECONDS


#: Sane bounds of the timing overrides, in seconds (a lease must stay something the codec accepts).
HEARTBEAT_BOUNDS = (0.05, 3600.0)
TTL_BOUNDS = (0.15, 24 * 3600.0)
IDLE_BOUNDS = (0.1, 30 * 24 * 3600.0)
CLAIM_BOUNDS = (0.5, 24 * 3600.0)
RSS_BOUNDS = (1.0, 1024 * 1024.0)
STALL_BOUNDS = (1.0, 365 * 24 * 3600.0)
#: A lease must outlive this many heartbeats, so one slow tick is never a death.
MIN_HEARTBEATS_PER_TTL = 3


def _seconds(
    env: Mapping[str, str], name: str, default: float, bounds: tuple[float, float], unit: str = "seconds"
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    lo, hi = bounds
    if not math.isfinite(value) or value <= 0:
        raise BadInputError(
            f"{name}={raw!r} is not a positive number of {unit}",
            hint=f"set {name} to e.g. 2.5 or unset it",
        )
    if not lo <= value <= hi:
        raise BadInputError(
            f"{name}={raw!r} is outside {lo:g}-{hi:g} {unit}",
            hint=f"set {name} within those bounds or unset it",
        )
    return value


def parse_port_range(raw: str, family_range: range, name: str) -> range:
    """Parse ``LO-HI`` (inclusive) into a sub-range of ``family_range``; anything outside is refused."""
    lo_text, sep, hi_text = raw.partition("-")
    try:
        lo, hi = int(lo_text), int(hi_text if sep else lo_text)
    except ValueError:
        lo, hi = -1, -2
    if lo > hi or lo not in family_range or hi not in family_range:
        raise BadInputError(
            f"{name}={raw!r} is not a port range inside {family_range.start}-{family_range.stop - 1}",
            hint=f"use LO-HI within {family_range.start}-{family_range.stop - 1}, or unset it",
        )
    return range(lo, hi + 1)


def parse_port(raw: str, allowed: range, name: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if port not in allowed:
        raise BadInputError(
            f"{name}={raw!r} is not a port in {allowed.start}-{allowed.stop - 1}",
            hint=f"use a port from {allowed.start} to {allowed.stop - 1}",
        )
    return port


def parse_failpoints(raw: str) -> frozenset[str]:
    names = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = names - KNOWN_FAILPOINTS
    if unknown:
        raise BadInputError(
            f"SYNCLEASE_FAILPOINTS names unknown failpoints: {', '.join(sorted(unknown))}",
            hint=f"use any of {', '.join(sorted(KNOWN_FAILPOINTS))}",
        )
    return names


def load(env: Mapping[str, str]) -> Settings:
    heartbeat = _seconds(env, "SYNCLEASE_HEARTBEAT_SECONDS", constants.HEARTBEAT_SECONDS, HEARTBEAT_BOUNDS)
    default_ttl = max(constants.LEASE_TTL_SECONDS, heartbeat * MIN_HEARTBEATS_PER_TTL)
    ttl = _seconds(env, "SYNCLEASE_LEASE_TTL_SECONDS", default_ttl, TTL_BOUNDS)
    if ttl < heartbeat * MIN_HEARTBEATS_PER_TTL:
        raise BadInputError(
            f"SYNCLEASE_LEASE_TTL_SECONDS={ttl:g} is shorter than {MIN_HEARTBEATS_PER_TTL} heartbeats "
            f"(SYNCLEASE_HEARTBEAT_SECONDS={heartbeat:g})",
            hint="raise the TTL, lower the heartbeat, or unset both",
        )
    idle = _seconds(
        env, "SYNCLEASE_IDLE_RETIREMENT_SECONDS", constants.SYNC_DAEMON_IDLE_RETIREMENT_SECONDS, IDLE_BOUNDS
    )
    port_range = constants.SYNC_PORT_RANGE
    raw_range = env.get("SYNCLEASE_PORT_RANGE", "").strip()
    if raw_range:
        port_range = parse_port_range(raw_range, constants.SYNC_PORT_RANGE, "SYNCLEASE_PORT_RANGE")
    raw_hint = env.get("SYNCLEASE_PORT_HINT", "").strip()
    hint = parse_port(raw_hint, port_range, "SYNCLEASE_PORT_HINT") if raw_hint else port_range.start
    return Settings(
        heartbeat_seconds=heartbeat,
        lease_ttl_seconds=ttl,
        idle_retirement_seconds=idle,
        port_hint=hint,
        port_range=port_range,
        failpoints=parse_failpoints(env.get("SYNCLEASE_FAILPOINTS", "")),
        claim_seconds=_seconds(env, "SYNCLEASE_CLAIM_SECONDS", 30.0, CLAIM_BOUNDS),
        max_rss_mb=_seconds(env, "SYNCLEASE_MAX_RSS_MB", constants.MAX_RSS_MB, RSS_BOUNDS, unit="MiB"),
        stall_seconds=_seconds(env, "SYNCLEASE_STALL_SECONDS", constants.STALL_SECONDS, STALL_BOUNDS),
    )
