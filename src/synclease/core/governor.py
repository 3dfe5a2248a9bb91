"""The governor: a pure decision, fed once per heartbeat tick by the daemon's loop.

It never looks at a clock, a file or a socket: the loop observes, this module decides.
"""

from __future__ import annotations

import enum

from synclease.core.reasons import LedgerReason
from synclease.core.record import record


class Action(enum.StrEnum):
    SERVE = "serve"
    DRAIN = "drain"  # stop taking work, let in-flight work finish, decide again next tick
    RETIRE = "retire"


class Reason(enum.StrEnum):
    """Why the governor retires the daemon: names taken from the one list (:mod:`core.reasons`)."""

    SUPERSEDED = LedgerReason.SUPERSEDED.value
    IDLE = LedgerReason.IDLE.value
    LEASE_REVOKED = LedgerReason.LEASE_REVOKED.value
    ROOT_GONE = LedgerReason.ROOT_GONE.value
    MEMORY = LedgerReason.MEMORY.value
    RETIRE_REQUESTED = LedgerReason.RETIRE_REQUESTED.value
    SHUTDOWN_REQUESTED = LedgerReason.SHUTDOWN_REQUESTED.value
    SIGNAL = LedgerReason.SIGNAL.value


@record
class Tick:
    """What the loop saw this tick. Times are monotonic seconds."""

    now: float
    last_activity: float
    idle_retirement_seconds: float
    in_flight: int
    superseded: bool
    lease_still_ours: bool
    root_gone: bool = False
    retire_requested: bool = False
    shutdown_requested: bool = False
    signalled: bool = False
    #: Resident memory in MiB, when it could be read, and the bound past which an idle daemon retires.
    rss_mb: float | None = None
    max_rss_mb: float | None = None


@record
class Decision:
    action: Action
    reason: Reason | None = None


SERVE = Decision(Action.SERVE)


def is_superseded(
    record_instance: str | None, record_generation: int, me: str, baseline_generation: int
) -> bool:
    """Superseded iff the singleton record names another instance written after we started.

    ``baseline_generation`` is the record's generation when this daemon started, raised to its own
    generation once it has been recorded. A record that names someone else but is no newer than that
    (we were spawned and not yet recorded, or we were never the singleton) is not a supersession.
    """
    return record_instance is not None and record_instance != me and record_generation > baseline_generation


def _why_leave(obs: Tick) -> Reason | None:
    if obs.signalled:
        return Reason.SIGNAL
    if obs.shutdown_requested:
        return Reason.SHUTDOWN_REQUESTED
    if obs.retire_requested:
        return Reason.RETIRE_REQUESTED
    if obs.superseded:
        return Reason.SUPERSEDED
    if obs.root_gone:
        return Reason.ROOT_GONE
    if not obs.lease_still_ours:
        return Reason.LEASE_REVOKED
    return None


def decide(obs: Tick) -> Decision:
    """Serve, drain, or retire. Never retire with work in flight."""
    reason = _why_leave(obs)
    if reason is not None:
        return Decision(Action.DRAIN if obs.in_flight else Action.RETIRE, reason)
    if obs.in_flight:
        return SERVE
    if obs.rss_mb is not None and obs.max_rss_mb is not None and obs.rss_mb > obs.max_rss_mb:
        # Only while idle: the next CLI call spawns a fresh daemon.
        return Decision(Action.RETIRE, Reason.MEMORY)
    if obs.now - obs.last_activity >= obs.idle_retirement_seconds:
        return Decision(Action.RETIRE, Reason.IDLE)
    return SERVE
