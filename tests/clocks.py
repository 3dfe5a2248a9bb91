"""A hand-driven clock for unit tests: wall and monotonic time move only when a test says so."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class FakeClock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now = datetime(2030, 1, 1, tzinfo=UTC)
        self._mono = 1000.0

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds
