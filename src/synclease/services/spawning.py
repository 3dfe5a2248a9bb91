"""The spawning half of ``ensure``: under the singleton lock, decide again (another CLI may have
spawned meanwhile), back off after repeated failed starts, spawn one daemon, wait for its health,
record it as the singleton; then, outside the lock, ask the superseded singleton to retire and run
the startup reaper (``safe_auto`` daemons and provably stale leases only)."""

from __future__ import annotations

import os
import subprocess

from synclease.adapters.ids import new_instance_id
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.adapters.spawn import python_module, spawn_detached, wait_for_child
from synclease.core.actor import Actor
from synclease.core.clock import Clock
from synclease.core.errors import DaemonStartError
from synclease.core.lease import LeaseRecord, SingletonRecord
from synclease.services.retire import request_retire
from synclease.services.reuse import EnsureResult, reuse
from synclease.services.singleton import live_health, live_singleton

DAEMON_MODULE = "synclease.daemons.sync"


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


def startup_reap(store: LeaseStore, clock: Clock, port_range: range, by: Actor | None = None) -> None:
    """The startup reaper: only ``safe_auto`` daemons and provably stale leases, never anything else.

    Imported here, not at the top: a ``sync start`` that reuses a healthy singleton never needs the
    fleet machinery, and its start-up time is a target (``benchmarks/``)."""
    from synclease.core.fleet import CleanupClass
    from synclease.services.survey import survey
    from synclease.services.sweep import sweep

    sweep(survey(store, clock, port_range), store, clock, {CleanupClass.SAFE_AUTO}, by=by)


def _check_backoff(root: DaemonRoot, clock: Clock) -> None:
    """Fail fast instead of a crash-respawn loop on every CLI call (3 failed starts in 10 minutes)."""
    from synclease.adapters.ledger_store import LedgerStore
    from synclease.core.ledger import EventKind
    from synclease.core.ledger_queries import respawn_backoff

    store = LedgerStore(root)
    backoff = respawn_backoff(store.newest_first(), clock.now())
    if not backoff.active:
        return
    last = next(e for e in store.newest_first() if e.kind is EventKind.START_FAILED)
    code = last.evidence.error_code or "unknown"
    raise DaemonStartError(
        f"the sync daemon failed to start {backoff.failures} times in the last 10 minutes "
        f"(last: {code}); not spawning it again for now",
        hint="fix the cause in the log below, then run: synclease sync start --force-spawn",
        log_tail="\n".join(last.evidence.log_tail or ()),
        code="backoff",
    )


def _spawn(root: DaemonRoot, store: LeaseStore, clock: Clock, version: str, by: Actor | None) -> LeaseRecord:
    """Spawn one daemon and wait for it, recording ``spawned`` and, if it never serves, ``start_failed``."""
    from synclease.adapters.log_files import prune_logs
    from synclease.core.ledger import EventEvidence, EventKind, log_lines
    from synclease.core.reasons import LedgerReason
    from synclease.services.history import Recorder

    prune_logs(root, live={entry.instance_id for entry in store.list()})
    recorder = Recorder(root, clock, by)
    instance_id = new_instance_id()
    child = spawn_daemon(root, instance_id)
    recorder.record(
        EventKind.SPAWNED, instance_id=instance_id, pid=child.pid, port=None, package_version=version
    )
    try:
        return wait_healthy(child, store, instance_id, clock)
    except DaemonStartError as exc:
        evidence = EventEvidence(error_code=exc.code, log_tail=log_lines(exc.log_tail) or None)
        recorder.record(
            EventKind.START_FAILED,
            instance_id=instance_id,
            pid=child.pid,
            port=None,
            package_version=version,
            reason=LedgerReason.STARTUP_FAILED,
            evidence=evidence,
        )
        raise


def _record(store: LeaseStore, lease: LeaseRecord, clock: Clock) -> None:
    store.write_singleton(SingletonRecord.naming(lease, store.next_generation(clock), clock.now()))


def spawn_singleton(
    store: LeaseStore,
    version: str,
    port_range: range | None,
    clock: Clock,
    *,
    by: Actor | None = None,
    force_spawn: bool = False,
) -> EnsureResult:
    """Under the singleton lock: reuse what another CLI spawned meanwhile, or spawn and record one.
    After a spawn, outside the lock, ask the superseded singleton to retire and run the startup
    reaper on ``port_range``."""
    root = store.root
    with store.singleton_lock():
        found = reuse(store, version, clock)
        if found is not None:
            return found
        view = live_singleton(store, clock)
        if not force_spawn:
            _check_backoff(root, clock)
        lease = _spawn(root, store, clock, version, by)
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
        request_retire(view.lease, "replaced", by)
    if port_range is not None:
        startup_reap(store, clock, port_range, by)
    return result
