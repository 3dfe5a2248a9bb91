"""The real clock: the system's wall and monotonic clocks, real sleeps and real waits."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from synclease.core.clock import Clock, Waitable


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, event: Waitable, timeout: float) -> bool:
        return event.wait(max(timeout, 0.0))


SYSTEM_CLOCK: Clock = SystemClock()
