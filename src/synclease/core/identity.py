"""Process identity, judged: is it still the same process, and is a lease's holder alive, dead, or
was its PID reused? Decided from proof only, failing closed.

The process adapter (:mod:`synclease.adapters.process`) gathers the facts; this module judges them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from synclease.core.constants import START_TIME_TOLERANCE_SECONDS


class HolderVerdict(enum.StrEnum):
    ALIVE = "alive"
    DEAD = "dead"
    PID_REUSED = "pid_reused"
    UNKNOWN = "unknown"

    @property
    def stale(self) -> bool:
        """True when the lease may be deleted without signalling anyone."""
        return self in (HolderVerdict.DEAD, HolderVerdict.PID_REUSED)


@dataclass(frozen=True)
class ProcessFacts:
    """What the OS says of a PID: ``exists`` False = no such process; ``start_time`` None = unreadable."""

    exists: bool
    start_time: float | None = None


def same_start(recorded: float, observed: float | None) -> bool:
    return observed is not None and abs(recorded - observed) <= START_TIME_TOLERANCE_SECONDS


def judge_holder(recorded_start: float, lock_free: bool | None, process: ProcessFacts) -> HolderVerdict:
    """Judge a holder from its per-instance lock and its PID's start time.

    ``lock_free``: True if the holder lock could be taken (nobody holds it), False if it is held,
    None if it could not be checked (missing or unreadable lock file).
    """
    if process.exists and process.start_time is None:
        return HolderVerdict.UNKNOWN
    same = process.exists and same_start(recorded_start, process.start_time)
    if lock_free is False:
        # Someone holds the lock: alive when the PID proves it, otherwise nothing is proven.
        return HolderVerdict.ALIVE if same else HolderVerdict.UNKNOWN
    if same:
        # The recorded process runs but its lock is free or uncheckable: it may be starting or
        # retiring. Not provably dead.
        return HolderVerdict.ALIVE if lock_free is None else HolderVerdict.UNKNOWN
    if not process.exists:
        return HolderVerdict.DEAD
    return HolderVerdict.PID_REUSED


def is_gone(recorded_start: float, process: ProcessFacts) -> bool:
    """The recorded process is gone: no such PID (a zombie counts as gone), or the PID now belongs to a
    process with another start time. Unreadable facts are not gone: unknown means don't assume."""
    if not process.exists:
        return True
    return process.start_time is not None and not same_start(recorded_start, process.start_time)
