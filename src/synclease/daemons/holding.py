"""What every lease-holding daemon does at startup and says of itself, whatever its family (lease-v1):
claiming the family's singleton, its first lease record, and the identity part of its self-report.
The sync daemon and a declared family's daemon (:mod:`synclease.daemons.hosted`) both use them."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.locks import HolderLock
from synclease.adapters.root import DaemonRoot
from synclease.core.clock import Clock, to_wire
from synclease.core.constants import PROTOCOL_VERSION
from synclease.core.errors import AlreadyRunningError, SyncleaseError
from synclease.core.identity import StartStamp
from synclease.core.lease import LeaseRecord, SingletonRecord
from synclease.daemons.lease_keeper import LeaseKeeper
from synclease.services.retire import release_record, request_retire
from synclease.services.singleton import live_singleton

T = TypeVar("T")
log = logging.getLogger("synclease.daemon")


def let_go(
    store: LeaseStore,
    instance_id: str,
    keeper: LeaseKeeper,
    holder: HolderLock,
    *,
    lock_timeout: float,
    stop_server: Callable[[], None],
) -> None:
    """The retirement steps every holder takes, in order: clear the singleton record if it still
    names ``instance_id`` (waiting at most ``lock_timeout`` for its lock), close the port, drop the
    lease if it is still ours, release the holder lock. A failure is logged, never raised."""
    try:
        release_record(store, instance_id, lock_timeout)
    except SyncleaseError as exc:
        log.warning("could not release the singleton record: %s", exc.one_line())
    stop_server()
    keeper.drop()
    try:
        holder.release()
    except OSError as exc:
        log.warning("could not release the holder lock: %s", exc)


def claim_singleton(
    store: LeaseStore, clock: Clock, bind: Callable[[], tuple[T, LeaseRecord]], *, replace: bool, hint: str
) -> tuple[T, int]:
    """Become the family's singleton: under its singleton lock, refuse (:class:`AlreadyRunningError`,
    exit 3) while a healthy one serves unless ``replace``; else ``bind`` (bind a port, write the
    lease) and write the record naming us. Then ask a replaced one to retire. Returns what ``bind``
    returned and the generation recorded."""
    with store.singleton_lock():
        current = live_singleton(store, clock)
        if current is not None and not replace:
            raise AlreadyRunningError(
                f"a healthy {store.family} daemon already serves this root (pid {current.lease.pid}, "
                f"port {current.lease.port})",
                hint=hint,
            )
        bound, lease = bind()
        generation = store.next_generation(clock)
        store.write_singleton(SingletonRecord.naming(lease, generation, clock.now()))
    if current is not None:
        request_retire(current.lease)
    return bound, generation


def first_lease(
    *,
    family: str,
    root: DaemonRoot,
    instance_id: str,
    start: StartStamp,
    port: int,
    version: str,
    ttl_seconds: float,
    token: str,
    now: datetime,
    auth_scope: str | None = None,
    queue_db_path: str | None = None,
) -> LeaseRecord:
    """The lease this process writes once it has bound ``port``: acquired and renewed ``now``."""
    return LeaseRecord(
        family=family,
        instance_id=instance_id,
        scope_id=root.scope_id,
        daemon_root=str(root.path),
        pid=os.getpid(),
        **start.wire(),
        port=port,
        package_version=version,
        protocol_version=PROTOCOL_VERSION,
        acquired_at=now,
        renewed_at=now,
        ttl_seconds=ttl_seconds,
        state="serving",
        token=token,
        auth_scope=auth_scope,
        queue_db_path=queue_db_path,
    )


def identity_report(lease: LeaseRecord, started_at: datetime, write_error: str | None) -> dict[str, Any]:
    """Who the holder of ``lease`` is, as its ``/api/health`` says it (never the token)."""
    return {
        "daemon_family": lease.family,
        "instance_id": lease.instance_id,
        "scope_id": lease.scope_id,
        "daemon_root": lease.daemon_root,
        "pid": lease.pid,
        "port": lease.port,
        **lease.start.wire(),
        "package_version": lease.package_version,
        "protocol_version": lease.protocol_version,
        "started_at": to_wire(started_at),
        "lease": {
            "state": lease.state,
            "renewed_at": to_wire(lease.renewed_at),
            "expires_at": to_wire(lease.expires_at),
            "write_error": write_error,
        },
    }
