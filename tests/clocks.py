"""Test clocks, in one place.

* :class:`FakeClock`: wall and monotonic time move only when a test says so, or when the code under
  test waits on it: ``sleep`` and ``wait`` advance time instead of sleeping (a wait on an event that
  is already set returns at once). For single-threaded timing tests: no real sleeps.
* :class:`RecordingClock`: reads time from another clock (real by default) and records every
  requested wait, but waits for real at most ``ceiling`` seconds (or until the event is set): for
  threaded tests (the worker) where backoff must be observed without being waited out.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.core.clock import Clock, Waitable


class FakeClock:
    """``tick``: each monotonic read moves time on by that much (to see a duration being measured);
    ``wall_reads`` counts the reads of wall time."""

    def __init__(self, *, tick: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._now = datetime(2030, 1, 1, tzinfo=UTC)
        self._mono = 1000.0
        self._tick = tick
        self.slept: list[float] = []
        self.wall_reads = 0

    def now(self) -> datetime:
        with self._lock:
            self.wall_reads += 1
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            value = self._mono
            self._mono += self._tick
            return value

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(seconds, 0.0))

    def wait(self, event: Waitable, timeout: float) -> bool:
        if event.is_set():
            return True
        self.sleep(timeout)
        return event.is_set()


class RecordingClock:
    def __init__(self, inner: Clock = SYSTEM_CLOCK, ceiling: float = 0.005) -> None:
        self.inner = inner
        self.ceiling = ceiling
        self._lock = threading.Lock()
        self.delays: list[float] = []

    def now(self) -> datetime:
        return self.inner.now()

    def monotonic(self) -> float:
        return self.inner.monotonic()

    def _record(self, seconds: float) -> None:
        with self._lock:
            self.delays.append(seconds)

    def sleep(self, seconds: float) -> None:
        self._record(seconds)
        time.sleep(min(max(seconds, 0.0), self.ceiling))

    def wait(self, event: Waitable, timeout: float) -> bool:
        self._record(timeout)
        return event.wait(min(timeout, self.ceiling))

    def snapshot(self) -> list[float]:
        with self._lock:
            return list(self.delays)
