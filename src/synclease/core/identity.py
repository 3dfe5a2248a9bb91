"""Process identity, judged: is it still the same process, and is a lease's holder alive, dead, or
was its PID reused? Decided from proof only, failing closed.

The process adapter (:mod:`synclease.adapters.process`) gathers the facts; this module judges them.
"""

from __future__ import annotations

import enum
import operator
from typing import Any, Generic, TypedDict, TypeVar, overload

from synclease.core.constants import START_TIME_TOLERANCE_SECONDS
from synclease.core.record import record


class HolderVerdict(enum.StrEnum):
    ALIVE = "alive"
    DEAD = "dead"
    PID_REUSED = "pid_reused"
    UNKNOWN = "unknown"

    @property
    def stale(self) -> bool:
        """True when the lease may be deleted without signalling anyone."""
        return self in (HolderVerdict.DEAD, HolderVerdict.PID_REUSED)


class StartFields(TypedDict):
    """A start as the wire documents (lease, health, dashboard record) carry it: three flat fields."""

    process_start_time: float
    process_start_ticks: int | None
    boot_id: str | None


@record
class StartStamp:
    """When a process started. ``epoch`` is wall-clock seconds (as ``psutil`` derives it from the boot
    time, so it moves when the wall clock is stepped); on Linux ``ticks`` (clock ticks since boot, from
    ``/proc/<pid>/stat``) and ``boot_id`` identify the start exactly and survive clock steps."""

    epoch: float
    ticks: int | None = None
    boot_id: str | None = None

    def wire(self) -> StartFields:
        """The flat wire fields, in the documents' order (the inverse of :class:`StartOf`)."""
        return {"process_start_time": self.epoch, "process_start_ticks": self.ticks, "boot_id": self.boot_id}


Start = StartStamp | float

#: What a record's start reads as: :class:`StartStamp` where the record always knows it (a lease, a
#: dashboard record), ``StartStamp | None`` where it may not (a listener, a self-report).
_S = TypeVar("_S", StartStamp, StartStamp | None)


def start_stamp(epoch: float | None, ticks: int | None, boot_id: str | None) -> StartStamp | None:
    """The one way flat start fields (as the wire documents carry them) become a :class:`StartStamp`:
    None when the wall-clock start is unknown (ticks and boot id alone do not make a start)."""
    return None if epoch is None else StartStamp(epoch, ticks, boot_id)


class StartOf(Generic[_S]):
    """A record's ``start``: its flat start fields, read as one :class:`StartStamp` by
    :func:`start_stamp`. The wire documents keep their flat fields (``process_start_time``,
    ``process_start_ticks``, ``boot_id``), so the codecs stay byte-identical; every record that has a
    start declares it with this, e.g. ``start = StartOf[StartStamp]("process_start_time",
    "process_start_ticks")``. A descriptor, not a base class: records refuse subclassing (ADR 0020)."""

    def __init__(self, epoch: str, ticks: str, boot_id: str = "boot_id") -> None:
        self.names = (epoch, ticks, boot_id)
        self._read = operator.attrgetter(*self.names)

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> StartOf[_S]: ...
    @overload
    def __get__(self, obj: object, owner: type[Any]) -> _S: ...
    def __get__(self, obj: object, owner: type[Any]) -> StartOf[_S] | StartStamp | None:
        if obj is None:
            return self
        return start_stamp(*self._read(obj))


def _stamp(value: Start) -> StartStamp:
    return value if isinstance(value, StartStamp) else StartStamp(value)


def same_start(recorded: Start, observed: Start | None) -> bool:
    """The same process start: equal kernel ticks on the same boot when both sides know them, else
    wall-clock start times within :data:`START_TIME_TOLERANCE_SECONDS`."""
    if observed is None:
        return False
    a, b = _stamp(recorded), _stamp(observed)
    if a.ticks is not None and b.ticks is not None and a.boot_id is not None and b.boot_id is not None:
        return a.ticks == b.ticks and a.boot_id == b.boot_id
    return abs(a.epoch - b.epoch) <= START_TIME_TOLERANCE_SECONDS


@record
class ProcessFacts:
    """What the OS says of a PID: ``exists`` False = no such process; ``start_time`` None = unreadable;
    ``uid`` its effective uid (None when unreadable)."""

    exists: bool
    start_time: float | None = None
    start_ticks: int | None = None
    boot_id: str | None = None
    uid: int | None = None

    start = StartOf[StartStamp | None]("start_time", "start_ticks")


def judge_holder(recorded_start: Start, lock_free: bool | None, process: ProcessFacts) -> HolderVerdict:
    """Judge a holder from its per-instance lock and its PID's start time.

    ``lock_free``: True if the holder lock could be taken (nobody holds it), False if it is held,
    None if it could not be checked (missing or unreadable lock file).
    """
    if process.exists and process.start_time is None:
        return HolderVerdict.UNKNOWN
    same = process.exists and same_start(recorded_start, process.start)
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


def is_gone(recorded_start: Start, process: ProcessFacts) -> bool:
    """The recorded process is gone: no such PID (a zombie counts as gone), or the PID now belongs to a
    process with another start time. Unreadable facts are not gone: unknown means don't assume."""
    if not process.exists:
        return True
    return process.start is not None and not same_start(recorded_start, process.start)
