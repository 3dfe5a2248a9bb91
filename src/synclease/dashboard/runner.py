"""The dashboard's lifecycle: bind → record → serve until asked to stop → un-record → exit 0.

Binds the first free port of ``[9237, 9337)`` from a hint, writes ``<project>/.kittify/.dashboard``,
serves until ``POST /api/shutdown`` (with the record's token), SIGTERM or SIGINT. Signal handlers only
set a flag and poke a wake-up socket. On the way out it closes the port and removes the record only if
the record still describes this very process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import select
import signal
import socket
import threading
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synclease import liveness
from synclease.clock import Clock, to_wire
from synclease.constants import DASHBOARD_PORT_RANGE, LOOPBACK
from synclease.daemon.bind import bind_first_free
from synclease.dashboard import record as rec
from synclease.dashboard.fleet import FleetView
from synclease.dashboard.server import DashboardServer

log = logging.getLogger("synclease.dashboard")
SERVER_STOP_TIMEOUT_SECONDS = 2.0


@dataclass
class DashboardOptions:
    project: Path  # resolved
    port_hint: int
    clock: Clock
    version: str
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


class Dashboard:
    def __init__(self, opts: DashboardOptions) -> None:
        self.opts = opts
        self.token = secrets.token_urlsafe(32)
        self.started_at = opts.clock.now()
        self.start_time = liveness.own_start_time()
        self.fleet_view = FleetView(opts.env, opts.clock)
        self.server: DashboardServer | None = None
        self.record: rec.DashboardRecord | None = None
        self.stop_requested = False
        self.signals = 0
        self._serving = False
        self._wake_r, self._wake_w = socket.socketpair()
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)

    # --- the Controller protocol used by the HTTP server --------------------------------------

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def health(self) -> dict[str, Any]:
        return {
            "daemon_family": rec.FAMILY,
            "project": str(self.opts.project),
            "pid": os.getpid(),
            "port": self.port,
            "process_start_time": self.start_time,
            "started_at": to_wire(self.started_at),
            "package_version": self.opts.version,
        }

    def fleet(self) -> tuple[int, dict[str, Any]]:
        return self.fleet_view.document()

    def request_shutdown(self) -> None:
        self.stop_requested = True
        self.poke()

    def poke(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> rec.DashboardRecord:
        """Bind the first free port from the hint, then write the record (0600, atomic)."""
        self.server = bind_first_free(
            self.opts.port_hint, DASHBOARD_PORT_RANGE, lambda port: DashboardServer(port, self)
        )
        self.record = rec.DashboardRecord(
            project=str(self.opts.project),
            port=self.port,
            pid=os.getpid(),
            process_start_time=self.start_time,
            started_at=self.started_at,
            package_version=self.opts.version,
            token=self.token,
        )
        rec.write(self.opts.project, self.record)
        return self.record

    def install_signal_handlers(self) -> None:
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: types.FrameType | None) -> None:
        self.signals += 1
        if self.signals > 1:
            os._exit(1)

    def serve(self) -> str:
        """Serve until a shutdown request or a signal; returns the reason."""
        assert self.server is not None
        threading.Thread(target=self.server.serve_forever, name="dashboard-http", daemon=True).start()
        self._serving = True
        log.info(
            "dashboard serving project=%s url=%s pid=%d version=%s",
            self.opts.project,
            rec.url_for(self.port),
            os.getpid(),
            self.opts.version,
        )
        while not self.stop_requested and self.signals == 0:
            readable, _, _ = select.select([self._wake_r], [], [])
            if readable:
                with contextlib.suppress(OSError):
                    while self._wake_r.recv(4096):
                        pass
        return "shutdown_requested" if self.stop_requested else "signal"

    def stop(self, reason: str) -> None:
        """Close the port, then drop the record if it is still ours. Bounded."""
        log.info("dashboard stopping reason=%s", reason)
        if self.server is not None and not self._serving:
            self.server.server_close()
        elif self.server is not None:
            server = self.server
            stopper = threading.Thread(target=server.shutdown, daemon=True)
            stopper.start()
            with (
                contextlib.suppress(OSError),
                socket.create_connection((LOOPBACK, self.port), timeout=0.2),
            ):
                pass
            stopper.join(timeout=SERVER_STOP_TIMEOUT_SECONDS)
            server.server_close()
        if self.record is not None:
            removed = rec.remove_if_own(self.opts.project, self.record)
            log.info("dashboard stopped reason=%s record_removed=%s", reason, removed)


def run_dashboard(opts: DashboardOptions) -> int:
    dashboard = Dashboard(opts)
    dashboard.install_signal_handlers()
    reason = "error"
    try:
        dashboard.start()
        reason = dashboard.serve()
    finally:
        dashboard.stop(reason)
    return 0
