"""The clock seam: wall-clock UTC for what goes on disk, monotonic time for intervals, and waiting.

The clock owns waiting as well as reading time, so every wait in the product (spawn waits, retries,
escalation steps, queue retries) can be driven by a test clock that advances instead of sleeping.
The real clock is :class:`synclease.adapters.clock.SystemClock`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

T = TypeVar("T")


class Waitable(Protocol):
    """Something a clock can wait on: a ``threading.Event`` in production."""

    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC wall-clock time."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        ...

    def wait(self, event: Waitable, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``event``; True if it is set."""
        ...


def poll(clock: Clock, probe: Callable[[], T | None], timeout: float, interval: float) -> T | None:
    """Call ``probe`` until it returns a value or ``timeout`` seconds have passed on ``clock``.

    The probe runs at least once; the result is the first non-None value, or None at the deadline.
    """
    deadline = clock.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            return None
        clock.sleep(min(interval, remaining))


def to_wire(moment: datetime) -> str:
    """Render an aware datetime as ISO 8601 UTC with a ``Z`` suffix, microsecond precision."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_wire(text: str) -> datetime:
    """Parse what :func:`to_wire` wrote (any ISO 8601 with an offset); naive times are rejected."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return moment.astimezone(UTC)
