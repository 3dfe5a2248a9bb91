"""A daemon of a declared family, on the one lifecycle (:mod:`synclease.daemons.lifecycle`).

What a host gets by calling ``synclease.serve(family)``: the same protocol the sync daemon keeps,
with no work of its own.

* startup: take the holder lock, claim the family's singleton under its lock (refuse, exit 3, while a
  healthy one serves, unless ``replace``), bind the first free port of the family's range, write the
  lease in the family's lease directory and the singleton record naming it; ask a replaced one to retire.
* step: renew the lease every heartbeat and ask the pure governor (idle for the family's idle
  constant, superseded, asked to retire, signalled, lease lost).
* shutdown: clear the singleton record if it still names us, close the port, drop the lease, release
  the holder lock. The reaper judges it with the same classification table as a sync daemon.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from synclease.adapters import process
from synclease.adapters.http_server import ControlServer, Request, Response, Route, bearer, bind_first_free
from synclease.adapters.ids import new_instance_id, new_token
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.locks import HolderLock
from synclease.adapters.root import DaemonRoot
from synclease.core import governor
from synclease.core.clock import Clock
from synclease.core.family import Family
from synclease.core.lease import LeaseRecord
from synclease.core.record import field, record
from synclease.core.settings import Settings
from synclease.daemons.holding import claim_singleton, first_lease, identity_report, let_go
from synclease.daemons.lease_keeper import LeaseKeeper, Standing
from synclease.daemons.lifecycle import Daemon, Leave

log = logging.getLogger("synclease.daemon")
RETIRE_LOCK_TIMEOUT_SECONDS = 5.0


@record(kw_only=True)
class HostedOptions:
    family: Family
    root: DaemonRoot
    settings: Settings
    clock: Clock
    version: str
    replace: bool = False
    instance_id: str = field(default_factory=new_instance_id)


class HostedDaemon(Daemon):
    def __init__(self, opts: HostedOptions) -> None:
        super().__init__(opts.clock)
        self.opts = opts
        self.family = opts.family
        self.store = LeaseStore(opts.root, opts.family.name)
        self.token = new_token()
        self.keeper = LeaseKeeper(self.store, self.clock)
        self.ignore_sigterm = "ignore_sigterm" in opts.settings.failpoints
        self.retire_requested = False
        self.started_at = self.clock.now()
        self.last_activity = self.clock.monotonic()
        self.baseline_generation = 0
        self.start = process.own_start()
        self._holder = HolderLock(opts.root.holder_lock_path(opts.instance_id, opts.family.name))

    # --- the control plane --------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        lease = self.keeper.lease
        assert lease is not None
        return identity_report(lease, self.started_at, self.keeper.write_error)

    def _server(self, port: int) -> ControlServer:
        owner = bearer(lambda: self.token)

        def health(request: Request) -> Response:
            return Response.json(200, self.health())

        def retire(request: Request) -> Response:
            accepted = "ignore_retire" not in self.opts.settings.failpoints
            if accepted:
                self.retire_requested = True
                self.waker.poke()
            return Response.json(202 if accepted else 503, {"accepted": accepted})

        routes = [Route("GET", self.family.health_path, health), Route("POST", "/api/retire", retire, owner)]
        return ControlServer(port, routes, server_name=f"synclease-{self.family.name}")

    # --- the hooks ----------------------------------------------------------------------------

    def startup(self) -> ControlServer:
        self._holder.acquire()
        server, self.baseline_generation = claim_singleton(
            self.store,
            self.clock,
            self._bind_and_lease,
            replace=self.opts.replace,
            hint="replace it, or reuse it",
        )
        return server

    def _bind_and_lease(self) -> tuple[ControlServer, LeaseRecord]:
        ports = self.family.port_range
        server = bind_first_free(ports.start, ports, self._server)
        self.keeper.write(
            first_lease(
                family=self.family.name,
                root=self.opts.root,
                instance_id=self.opts.instance_id,
                start=self.start,
                port=server.port,
                version=self.opts.version,
                ttl_seconds=self.opts.settings.lease_ttl_seconds,
                token=self.token,
                now=self.clock.now(),
            )
        )
        assert self.keeper.lease is not None
        return server, self.keeper.lease

    def on_serving(self) -> None:
        lease = self.keeper.lease
        assert lease is not None
        log.info(
            "%s serving instance=%s port=%d pid=%d",
            self.family.name,
            lease.instance_id,
            lease.port,
            lease.pid,
        )

    def step(self) -> Leave | float:
        failpoints = self.opts.settings.failpoints
        standing = Standing.OURS if "stall_heartbeat" in failpoints else self.keeper.renew(draining=False)
        try:
            record = self.store.read_singleton().record
        except OSError:
            record = None
        superseded = record is not None and governor.is_superseded(
            record.instance_id, record.generation, self.opts.instance_id, self.baseline_generation
        )
        idle = self.family.idle_retirement_seconds
        decision = governor.decide(
            governor.Tick(
                now=self.clock.monotonic(),
                last_activity=self.last_activity,
                idle_retirement_seconds=math.inf if idle is None else idle,
                in_flight=0,
                superseded=superseded and "stall_heartbeat" not in failpoints,
                lease_still_ours=standing is not Standing.REVOKED,
                root_gone=standing is Standing.ROOT_GONE,
                retire_requested=self.retire_requested,
                signalled=self.signals > 0,
            )
        )
        if decision.action is governor.Action.SERVE:
            return self.opts.settings.heartbeat_seconds
        return Leave(decision.reason.value if decision.reason is not None else "retired")

    def shutdown(self, reason: str, deadline: float) -> None:
        say = log.info if self.keeper.lease is not None else log.debug
        say("%s retiring reason=%s instance=%s", self.family.name, reason, self.opts.instance_id)
        left = max(0.0, min(RETIRE_LOCK_TIMEOUT_SECONDS, deadline - self.clock.monotonic()))
        let_go(
            self.store,
            self.opts.instance_id,
            self.keeper,
            self._holder,
            lock_timeout=left,
            stop_server=lambda: self.stop_server(deadline),
        )


def serve_family(opts: HostedOptions) -> int:
    """Run a daemon of ``opts.family`` in this process until it retires; 0 once it has."""
    return HostedDaemon(opts).run()
