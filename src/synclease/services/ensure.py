"""``ensure``: reuse the live singleton, or spawn exactly one daemon and record it, under one lock.

After a spawn, outside the lock, the superseded singleton is asked to retire
(:func:`synclease.services.retire.request_retire`) and the startup reaper cleans ``safe_auto``
daemons and provably stale leases of the port range.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.ids import new_instance_id
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.adapters.session_store import current_session
from synclease.adapters.spawn import python_module, spawn_detached, wait_for_child
from synclease.core.clock import Clock
from synclease.core.lease import LeaseRecord, SingletonRecord
from synclease.core.versions import is_older, protocol_compatible
from synclease.services.retire import request_retire
from synclease.services.singleton import SingletonView, live_health, live_singleton

DAEMON_MODULE = "synclease.daemons.sync"


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
    if view.health.session_id != session_id:
        return False
    return protocol_compatible(view.lease.protocol_version) and not is_older(
        view.package_version, our_version
    )


def spawn_daemon(root: DaemonRoot, instance_id: str) -> subprocess.Popen[bytes]:
    """``python -m synclease.daemons.sync --managed``: detached, output to the root's per-instance log."""
    argv = python_module(DAEMON_MODULE, "--managed", "--instance-id", instance_id)
    child, _ = spawn_detached(
        argv, root.log_path(instance_id), root.path, dict(os.environ, SYNCLEASE_HOME=str(root.path))
    )
    return child


def wait_healthy(
    proc: subprocess.Popen[bytes], store: LeaseStore, instance_id: str, clock: Clock
) -> LeaseRecord:
    """Wait until the child's lease exists and its live self-report agrees with it."""

    def probe() -> LeaseRecord | None:
        lease = store.read(instance_id).lease
        return lease if lease is not None and live_health(lease) is not None else None

    return wait_for_child(
        proc, probe, what="sync daemon", log_path=store.root.log_path(instance_id), clock=clock
    )


def startup_reap(store: LeaseStore, clock: Clock, port_range: range) -> None:
    """The startup reaper: only ``safe_auto`` daemons and provably stale leases, never anything else.

    Imported here, not at the top: a ``sync start`` that reuses a healthy singleton never needs the
    fleet machinery, and its start-up time is a target (``benchmarks/``)."""
    from synclease.core.fleet import CleanupClass
    from synclease.services.survey import survey
    from synclease.services.sweep import sweep

    sweep(survey(store, clock, port_range), store, clock, {CleanupClass.SAFE_AUTO})


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


def ensure(
    root: DaemonRoot, version: str, port_range: range | None = None, clock: Clock = SYSTEM_CLOCK
) -> EnsureResult:
    """Reuse or spawn under the singleton lock. After a spawn, outside the lock, ask the superseded
    singleton to retire and run the startup reaper on ``port_range``."""
    store = LeaseStore(root)
    with store.singleton_lock():
        view = live_singleton(store, clock)
        if view is not None and reusable(view, version, _session_id(root)):
            lease = view.lease
            return EnsureResult(lease.pid, lease.port, lease.instance_id, view.package_version, True)
        instance_id = new_instance_id()
        lease = wait_healthy(spawn_daemon(root, instance_id), store, instance_id, clock)
        _record(store, lease, clock)
    result = EnsureResult(
        lease.pid,
        lease.port,
        lease.instance_id,
        lease.package_version,
        False,
        view.lease.instance_id if view else None,
    )
    if view is not None:
        request_retire(view.lease)
    if port_range is not None:
        startup_reap(store, clock, port_range)
    return result
