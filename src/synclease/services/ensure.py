"""``ensure``: reuse the live singleton, or spawn exactly one daemon and record it.

The reuse path (:mod:`synclease.services.reuse`) is lock-free and light: no file lock, no process
table, no spawning machinery imported; it is what every host CLI command pays.
Only when there is nothing to reuse does :mod:`synclease.services.spawning` take the singleton lock,
decide again, spawn, record, ask a superseded singleton to retire and run the startup reaper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.core.clock import Clock
from synclease.services.reuse import EnsureResult, reuse

if TYPE_CHECKING:
    from synclease.core.actor import Actor


def ensure(
    root: DaemonRoot,
    version: str,
    port_range: range | None = None,
    clock: Clock = SYSTEM_CLOCK,
    *,
    by: Actor | None = None,
    force_spawn: bool = False,
) -> EnsureResult:
    """Reuse the live singleton, or spawn one (:func:`synclease.services.spawning.spawn_singleton`).

    Spawning backs off after repeated failed starts (ledger ``start_failed``): ``force_spawn`` tries
    anyway (``sync start --force-spawn``); a start that serves clears the backoff."""
    store = LeaseStore(root)
    found = reuse(store, version, clock)
    if found is not None:
        return found
    from synclease.services.spawning import spawn_singleton

    return spawn_singleton(store, version, port_range, clock, by=by, force_spawn=force_spawn)
