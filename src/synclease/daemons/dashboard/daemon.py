"""The dashboard's hooks on the shared lifecycle (:mod:`synclease.daemons.lifecycle`).

Startup binds the first free port of ``[9237, 9337)`` from a hint and writes
``<project>/.kittify/.dashboard``; the loop waits for ``POST /api/shutdown`` (with the record's token),
SIGTERM or SIGINT; shutdown closes the port and removes the record only if it still describes this
very process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from synclease.adapters import dashboard_store, process
from synclease.adapters.http_server import ControlServer, bind_first_free
from synclease.adapters.ids import new_token
from synclease.core.clock import Clock, to_wire
from synclease.core.constants import DASHBOARD_PORT_RANGE
from synclease.core.dashboard_record import FAMILY, DashboardRecord, url_for
from synclease.core.record import field, record
from synclease.daemons.dashboard.control import dashboard_server
from synclease.daemons.dashboard.fleet_view import FleetView
from synclease.daemons.lifecycle import Daemon, Leave

log = logging.getLogger("synclease.dashboard")


@record(frozen=False)
class DashboardOptions:
    project: Path  # resolved
    port_hint: int
    clock: Clock
    version: str
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


class Dashboard(Daemon):
    def __init__(self, opts: DashboardOptions) -> None:
        super().__init__(opts.clock)
        self.opts = opts
        self.token = new_token()
        self.started_at = opts.clock.now()
        self.start = process.own_start()
        self.fleet_view = FleetView(opts.env, opts.clock)
        self.record: DashboardRecord | None = None
        self.stop_requested = False

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    # --- what the control plane asks ----------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {
            "daemon_family": FAMILY,
            "project": str(self.opts.project),
            "pid": os.getpid(),
            "port": self.port,
            **self.start.wire(),
            "started_at": to_wire(self.started_at),
            "package_version": self.opts.version,
        }

    def fleet(self) -> tuple[int, dict[str, Any]]:
        return self.fleet_view.document()

    def request_shutdown(self) -> None:
        self.stop_requested = True
        self.waker.poke()

    # --- the hooks ---------------------------------------------------------------------------

    def startup(self) -> ControlServer:
        """Bind the first free port from the hint, then write the record (0600, atomic)."""
        self.server = bind_first_free(
            self.opts.port_hint, DASHBOARD_PORT_RANGE, lambda p: dashboard_server(p, self)
        )
        self.record = DashboardRecord(
            project=str(self.opts.project),
            port=self.port,
            pid=os.getpid(),
            started_at=self.started_at,
            package_version=self.opts.version,
            token=self.token,
            **self.start.wire(),
        )
        dashboard_store.write(self.opts.project, self.record)
        return self.server

    def on_serving(self) -> None:
        log.info(
            "dashboard serving project=%s url=%s pid=%d version=%s",
            self.opts.project,
            url_for(self.port),
            os.getpid(),
            self.opts.version,
        )

    def step(self) -> Leave | None:
        if self.stop_requested:
            return Leave("shutdown_requested")
        if self.signals:
            return Leave("signal")
        return None

    def shutdown(self, reason: str, deadline: float) -> None:
        """Close the port, then drop the record if it is still ours. Bounded."""
        log.info("dashboard stopping reason=%s", reason)
        self.stop_server(deadline)
        if self.record is not None:
            removed = dashboard_store.remove_if_own(self.opts.project, self.record)
            log.info("dashboard stopped reason=%s record_removed=%s", reason, removed)


def run_dashboard(opts: DashboardOptions) -> int:
    return Dashboard(opts).run()
