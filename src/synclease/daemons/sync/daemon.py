"""The sync daemon's hooks on the shared lifecycle (:mod:`synclease.daemons.lifecycle`).

* startup: take the holder lock, bind, write the lease; when run by a user (not ``--managed``), claim
  the singleton under the singleton lock, or refuse (exit 3) unless ``--replace``.
* step: renew the lease, observe, ask the pure governor (:func:`synclease.core.governor.decide`).
  The loop steps once a heartbeat, or when poked (a signal, a control request, or, while draining,
  the worker settling its batch): no polling. The lease is written at most once a heartbeat, and at
  once when its state changes (``draining``).
* shutdown: stop the worker (its batch is finished or released), clear the singleton record if it
  still names us, close the port, drop the lease if it is still ours, release the holder lock.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from synclease.adapters import process
from synclease.adapters.http_server import ControlServer, bind_first_free
from synclease.adapters.ids import new_instance_id, new_token
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.locks import HolderLock
from synclease.adapters.root import DaemonRoot
from synclease.core import governor
from synclease.core.actor import Actor
from synclease.core.clock import Clock
from synclease.core.constants import SYNC
from synclease.core.errors import SyncleaseError
from synclease.core.lease import LeaseRecord
from synclease.core.record import field, record
from synclease.core.settings import Settings
from synclease.daemons.holding import claim_singleton, first_lease, let_go
from synclease.daemons.lease_keeper import LeaseKeeper, Standing, fault_code
from synclease.daemons.lifecycle import Daemon, Leave
from synclease.daemons.sync.control import control_server
from synclease.daemons.sync.self_report import self_report
from synclease.daemons.sync.wiring import WorkSetup
from synclease.daemons.sync.witness import Witness

log = logging.getLogger("synclease.daemon")
RETIRE_LOCK_TIMEOUT_SECONDS = 5.0
WORKER_STOP_TIMEOUT_SECONDS = 10.0


@record(frozen=False)
class DaemonOptions:
    root: DaemonRoot
    settings: Settings
    clock: Clock
    version: str
    instance_id: str = field(default_factory=new_instance_id)
    managed: bool = False  # spawned by `ensure`, which holds the singleton lock and records us
    replace: bool = False


class SyncDaemon(Daemon):
    def __init__(self, opts: DaemonOptions, work: WorkSetup) -> None:
        super().__init__(opts.clock)
        self.opts = opts
        self.store = LeaseStore(opts.root)
        self.token = new_token()
        self.work = work
        self.worker = work.worker
        self.ignore_sigterm = "ignore_sigterm" in opts.settings.failpoints
        self.retire_requested = False
        self.shutdown_requested = False
        self.last_kick = self.clock.monotonic()
        self.draining = False
        self.baseline_generation = 0
        self.started_at = self.clock.now()
        self.start = process.own_start()
        self.keeper = LeaseKeeper(self.store, self.clock, every=opts.settings.heartbeat_seconds)
        self.worker.on_settled(self._settled)
        self.witness = Witness(opts.root, self.clock)
        self._holder = HolderLock(opts.root.holder_lock_path(opts.instance_id))

    # --- what the control plane asks ----------------------------------------------------------

    @property
    def lease(self) -> LeaseRecord | None:
        return self.keeper.lease

    def health(self) -> dict[str, Any]:
        assert self.lease is not None
        status, in_flight = self.worker.status(), self.worker.in_flight()
        return self_report(
            self.lease,
            self.started_at,
            write_error=self.keeper.write_error,
            status=status,
            in_flight=in_flight,
            work=self.work,
        )

    def request_retire(self, reason: str | None = None, by: Actor | None = None) -> bool:
        if "ignore_retire" in self.opts.settings.failpoints:
            return False
        self.witness.asked(reason, by)
        self.retire_requested = True
        self.waker.poke()
        return True

    def request_shutdown(self) -> bool:
        if "ignore_retire" in self.opts.settings.failpoints:
            return False
        self.shutdown_requested = True
        self.waker.poke()
        return True

    def _settled(self) -> None:
        """The worker's batch settled: a draining daemon decides again now (it may retire)."""
        if self.draining:
            self.waker.poke()

    def kick(self) -> None:
        self.last_kick = self.clock.monotonic()
        self.worker.kick()

    # --- startup -----------------------------------------------------------------------------

    def startup(self) -> ControlServer:
        """Take the holder lock, bind, write the lease; claim the singleton unless managed."""
        self._holder.acquire()
        if self.opts.managed:
            self.baseline_generation = self.store.next_generation(self.clock) - 1
            return self._bind_and_lease()[0]
        hint = "use `synclease sync run --replace` to supersede it"
        server, self.baseline_generation = claim_singleton(
            self.store, self.clock, self._bind_and_lease, replace=self.opts.replace, hint=hint
        )
        return server

    def _bind_and_lease(self) -> tuple[ControlServer, LeaseRecord]:
        settings = self.opts.settings
        server = bind_first_free(settings.port_hint, settings.port_range, lambda p: control_server(p, self))
        lease = first_lease(
            family=SYNC,
            root=self.opts.root,
            instance_id=self.opts.instance_id,
            start=self.start,
            port=server.port,
            version=self.opts.version,
            ttl_seconds=settings.lease_ttl_seconds,
            token=self.token,
            now=self.clock.now(),
            auth_scope=self.work.auth_scope,
            queue_db_path=self.work.queue_db_path,
        )
        self.keeper.write(lease)
        return server, lease

    def on_serving(self) -> None:
        self.worker.start()
        assert self.lease is not None
        self.witness.serving(self.lease)
        log.info(
            "serving instance=%s port=%d version=%s pid=%d",
            self.opts.instance_id,
            self.lease.port,
            self.opts.version,
            os.getpid(),
        )

    # --- the loop ----------------------------------------------------------------------------

    def step(self) -> Leave | float:
        decision = self.tick()
        if decision.action is governor.Action.RETIRE:
            assert decision.reason is not None
            return Leave(decision.reason.value)
        if decision.action is governor.Action.DRAIN and not self.draining:
            self._begin_drain(decision.reason)
        # Wake for the next renewal (a step between heartbeats does not push it back); while
        # draining, the settled batch pokes the loop.
        # A renewal that did not happen (stalled, revoked) leaves nothing due sooner: a heartbeat.
        heartbeat, due = self.opts.settings.heartbeat_seconds, self.keeper.due_in()
        return heartbeat if due <= 0 else min(heartbeat, due)

    def tick(self) -> governor.Decision:
        """Renew the lease (unless stalled by a failpoint), observe, decide. A host fault while
        observing (the singleton record unreadable for a moment) is a reason to try again, not to go."""
        if "stall_heartbeat" in self.opts.settings.failpoints:
            return self._decide_stalled()
        standing = self.keeper.renew(self.draining)
        try:
            record = self.store.read_singleton().record
        except OSError as exc:
            log.warning("could not read the singleton record (%s); deciding without it", fault_code(exc))
            record = None
        if record is not None and record.instance_id == self.opts.instance_id:
            self.baseline_generation = max(self.baseline_generation, record.generation)
        superseded = record is not None and governor.is_superseded(
            record.instance_id, record.generation, self.opts.instance_id, self.baseline_generation
        )
        if superseded:
            self.witness.saw(record, self.opts.instance_id)
        obs = governor.Tick(
            now=self.clock.monotonic(),
            last_activity=max(self.last_kick, self.worker.last_activity_monotonic()),
            idle_retirement_seconds=self.opts.settings.idle_retirement_seconds,
            in_flight=int(self.worker.in_flight()),
            superseded=superseded,
            lease_still_ours=standing is not Standing.REVOKED,
            root_gone=standing is Standing.ROOT_GONE,
            retire_requested=self.retire_requested,
            shutdown_requested=self.shutdown_requested,
            signalled=self.signals > 0,
            rss_mb=process.own_rss_mb(),
            max_rss_mb=self.opts.settings.max_rss_mb,
        )
        return governor.decide(obs)

    def _decide_stalled(self) -> governor.Decision:
        """``stall_heartbeat``: keep serving health, stop renewing and governing itself. Outside
        commands still count: a signal, or a retire/shutdown request (unless ``ignore_retire``)."""
        for flag, reason in (
            (self.signals > 0, governor.Reason.SIGNAL),
            (self.shutdown_requested, governor.Reason.SHUTDOWN_REQUESTED),
            (self.retire_requested, governor.Reason.RETIRE_REQUESTED),
        ):
            if flag:
                return governor.Decision(governor.Action.RETIRE, reason)
        return governor.SERVE

    def _begin_drain(self, reason: governor.Reason | None) -> None:
        log.info("draining reason=%s", reason)
        self.draining = True
        self.worker.stop_claiming()
        self.keeper.renew(draining=True)

    # --- shutdown ----------------------------------------------------------------------------

    def _left(self, deadline: float, cap: float) -> float:
        return max(0.0, min(cap, deadline - self.clock.monotonic()))

    def shutdown(self, reason: str, deadline: float) -> None:
        """Release what is ours, close the port, drop the lease; bounded as a whole by ``deadline``.

        A start that failed before any lease was written (e.g. exit 3) has nothing to report."""
        say = log.info if self.lease is not None else log.debug
        say("retiring reason=%s instance=%s", reason, self.opts.instance_id)
        self.draining = True
        self.worker.stop(self._left(deadline, WORKER_STOP_TIMEOUT_SECONDS))
        let_go(
            self.store,
            self.opts.instance_id,
            self.keeper,
            self._holder,
            lock_timeout=self._left(deadline, RETIRE_LOCK_TIMEOUT_SECONDS),
            stop_server=lambda: self.stop_server(deadline),
        )
        if self.lease is not None:
            idle = self.clock.monotonic() - max(self.last_kick, self.worker.last_activity_monotonic())
            self.witness.retired(self.lease, reason, idle, self._queue_depth())
        say("retired reason=%s instance=%s", reason, self.opts.instance_id)

    def _queue_depth(self) -> int | None:
        try:
            return self.worker.status().queue_depth
        except (OSError, SyncleaseError):
            return None
