"""The reuse decision of ``ensure``: the live singleton, if this install may use it. Lock-free and light
(two small file reads and one ``GET /api/health``): it is what every host CLI command pays, and what
:mod:`synclease.services.spawning` asks again under the singleton lock."""

from __future__ import annotations

from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.adapters.session_store import current_session
from synclease.core.clock import Clock
from synclease.core.record import as_json, record
from synclease.core.versions import is_older, protocol_compatible
from synclease.services.singleton import SingletonView, live_singleton


@record
class EnsureResult:
    pid: int
    port: int
    instance_id: str
    package_version: str
    reused: bool
    superseded: str | None = None  # instance id of the singleton we replaced, if any

    def to_json(self) -> dict[str, object]:
        return as_json(self, omit=("superseded",))


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
