"""``/api/fleet``: the very document ``synclease auth doctor --json`` prints, computed on request.

Read-only by construction: it locates the sync root without creating it
(:func:`synclease.adapters.root.locate`, never ``prepare``) and renders its doctor document
(:func:`synclease.services.doctor.doctor_document`, whose survey never signals or deletes). It never
starts, reuses or cleans a sync daemon.
One survey runs at a time and a fresh result is shared for ``min_interval`` seconds, so a page open in
many tabs costs one scan per interval. No typer/rich imports: this runs in the detached dashboard.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from synclease.adapters import environment
from synclease.adapters.fsio import check_private_dir
from synclease.adapters.root import locate
from synclease.core.clock import Clock
from synclease.core.errors import SyncleaseError
from synclease.services.doctor import doctor_document

FLEET_MIN_INTERVAL_SECONDS = 1.0


def fleet_document(env: Mapping[str, str], clock: Clock) -> dict[str, Any]:
    """Build the doctor-v2 document for the sync root named by ``env``. Raises SyncleaseError."""
    root = locate(env)
    check_private_dir(root.path)
    settings = environment.settings(env)
    return doctor_document(root, clock, settings.port_range, settings.stall_seconds)


class FleetView:
    """Serialised, briefly cached :func:`fleet_document`; errors are a ``{"error": ...}`` document."""

    def __init__(
        self, env: Mapping[str, str], clock: Clock, min_interval: float = FLEET_MIN_INTERVAL_SECONDS
    ) -> None:
        self._env = dict(env)
        self._clock = clock
        self._min_interval = min_interval
        self._lock = threading.Lock()
        self._cached: tuple[float, int, dict[str, Any]] | None = None

    def document(self) -> tuple[int, dict[str, Any]]:
        """``(HTTP status, document)``; 200 with the doctor document, 503 with an error message."""
        with self._lock:
            now = self._clock.monotonic()
            if self._cached is not None and now - self._cached[0] < self._min_interval:
                return self._cached[1], self._cached[2]
            try:
                result: tuple[int, dict[str, Any]] = (200, fleet_document(self._env, self._clock))
            except SyncleaseError as exc:
                result = (503, {"error": exc.one_line()})
            self._cached = (self._clock.monotonic(), *result)
            return result
