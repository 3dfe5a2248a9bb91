"""``ensure``: reuse the live singleton, or spawn exactly one daemon and record it.

The reuse path is lock-free and light (two small file reads and one ``GET /api/health``; no file
lock, no process table, no spawning machinery imported): it is what every host CLI command pays.
Only when there is nothing to reuse does :mod:`synclease.services.spawning` take the singleton lock,
decide again, spawn, record, ask a superseded singleton to retire and run the startup reaper.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.adapters.session_store import current_session
from synclease.core.clock import Clock
from synclease.core.record import record
from synclease.core.versions import is_older, protocol_compatible
from synclease.services.singleton import SingletonView, live_singleton

if TYPE_CHECKING:
    from synclease.core.actor import Actor


@record
class EnsureResult:
    pid: int
    port: int
    instance_id: str
    package_version: str
    reused: bool
    superseded: str | None = None  # instance id of the singleton we replaced, if any

    def to_json(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "port": self.port,
            "instance_id": self.instance_id,
            "package_version": self.package_version,
            "reused": self.reused,
        }


def reusable(view: SingletonView, our_version: str, session_id: str | None) -> bool:
    """Reuse a singleton that speaks our protocol, is not older than us (newer wins) and holds the
    current login (a new login, even in the same scope, needs a daemon holding the new token)."""
    if view.health.session_id != session_id:
        return False
    return protocol_compatible(view.lease.protocol_version) and not is_older(
        view.package_version, our_version
    )


def session_id(root: DaemonRoot) -> str | None:
    session = current_session(root)
    return session.session_id if session else None


def reuse(store: LeaseStore, version: str, clock: Clock = SYSTEM_CLOCK) -> EnsureResult | None:
    """The live singleton, if it may be reused; lock-free."""
    view = live_singleton(store, clock)
    if view is None or not reusable(view, version, session_id(store.root)):
        return None
    lease = view.lease
    return EnsureResult(lease.pid, lease.port, lease.instance_id, view.package_version, True)


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
