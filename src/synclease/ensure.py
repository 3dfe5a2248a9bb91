"""``ensure``: reuse the live singleton, or spawn exactly one daemon and record it. Under one lock."""

from __future__ import annotations

from dataclasses import dataclass

from synclease import httpc
from synclease.clock import Clock
from synclease.lease.codec import LeaseRecord, SingletonRecord, new_instance_id
from synclease.lease.store import LeaseStore
from synclease.root import DaemonRoot
from synclease.singleton_view import SingletonView, live_singleton
from synclease.spawn import spawn_daemon, wait_healthy
from synclease.versions import is_older, protocol_compatible
from synclease.work.session import current_session

RETIRE_REQUEST_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
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
    if view.health.get("session_id") != session_id:
        return False
    return protocol_compatible(view.lease.protocol_version) and not is_older(
        view.package_version, our_version
    )


def startup_reap(store: LeaseStore, clock: Clock, port_range: range) -> None:
    """The startup reaper: only ``safe_auto`` daemons and provably stale leases, never anything else.

    Imported here, not at the top: a ``sync start`` that reuses a healthy singleton never needs the
    fleet machinery, and its start-up time is a target (BRIEF §11)."""
    from synclease.fleet.model import CleanupClass
    from synclease.fleet.survey import survey
    from synclease.fleet.sweep import sweep

    sweep(survey(store, clock, port_range), store, clock, {CleanupClass.SAFE_AUTO})


def ensure(root: DaemonRoot, clock: Clock, version: str, port_range: range | None = None) -> EnsureResult:
    """Reuse or spawn under the singleton lock. After a spawn, outside the lock, ask the superseded
    singleton to retire and run the startup reaper on ``port_range``."""
    store = LeaseStore(root)
    with store.singleton_lock():
        view = live_singleton(store, clock)
        if view is not None and reusable(view, version, _session_id(root)):
            result = EnsureResult(
                view.lease.pid, view.lease.port, view.lease.instance_id, view.package_version, True
            )
        else:
            instance_id = new_instance_id()
            lease = wait_healthy(spawn_daemon(root, instance_id), store, instance_id)
            _record(store, lease, clock)
            result = EnsureResult(
                lease.pid,
                lease.port,
                lease.instance_id,
                lease.package_version,
                False,
                view.lease.instance_id if view else None,
            )
    if result.reused:
        return result
    if view is not None and result.superseded is not None:
        httpc.post(view.lease.port, "/api/retire", view.lease.token, timeout=RETIRE_REQUEST_TIMEOUT_SECONDS)
    if port_range is not None:
        startup_reap(store, clock, port_range)
    return result


def _session_id(root: DaemonRoot) -> str | None:
    session = current_session(root)
    return session.session_id if session else None


def _record(store: LeaseStore, lease: LeaseRecord, clock: Clock) -> None:
    store.write_singleton(
        SingletonRecord(
            family=lease.family,
            instance_id=lease.instance_id,
            generation=store.next_generation(),
            pid=lease.pid,
            port=lease.port,
            package_version=lease.package_version,
            protocol_version=lease.protocol_version,
            written_at=clock.now(),
        )
    )
