"""The seam between the governor and the daemon's work: what "work in flight" and "activity" mean."""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol


class Worker(Protocol):
    def start(self) -> None: ...
    def in_flight(self) -> bool: ...
    def stop_claiming(self) -> None: ...
    def stop(self, timeout: float) -> None: ...
    def kick(self) -> None: ...
    def status(self) -> dict[str, Any]: ...
    def last_activity_monotonic(self) -> float: ...


class IdleWorker:
    """Local-only stand-in: no queue to drain, never in flight."""

    def __init__(self) -> None:
        self._since = time.monotonic()

    def start(self) -> None:
        return None

    def in_flight(self) -> bool:
        return False

    def stop_claiming(self) -> None:
        return None

    def stop(self, timeout: float) -> None:
        return None

    def kick(self) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {
            "running": False,
            "queue_depth": 0,
            "last_sync": None,
            "consecutive_failures": 0,
            "auth_problem": False,
        }

    def last_activity_monotonic(self) -> float:
        return self._since


class RequestTracker:
    """Counts control-plane requests in flight (health excluded) and remembers the last activity."""

    def __init__(self, now: float) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._last = now

    def begin(self, now: float) -> None:
        with self._lock:
            self._active += 1
            self._last = now

    def end(self, now: float) -> None:
        with self._lock:
            self._active -= 1
            self._last = now

    def touch(self, now: float) -> None:
        with self._lock:
            self._last = now

    @property
    def active(self) -> int:
        with self._lock:
            return self._active

    @property
    def last_activity(self) -> float:
        with self._lock:
            return self._last
