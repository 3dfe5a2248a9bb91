"""The daemon's lifecycle: startup → heartbeat loop → bounded retirement.

Signal handlers only set flags and poke a wake-up socket; the loop observes, asks the pure governor
(:mod:`.governor`) what to do, and acts.
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
from dataclasses import dataclass, field
from typing import Any

from synclease import httpc, liveness
from synclease.clock import Clock, to_wire
from synclease.constants import LOOPBACK, PROTOCOL_VERSION
from synclease.daemon import governor
from synclease.daemon.bind import bind_first_free
from synclease.daemon.server import ControlServer
from synclease.daemon.work import IdleWorker, RequestTracker, Worker
from synclease.errors import AlreadyRunningError, SyncleaseError
from synclease.lease.codec import LeaseRecord, SingletonRecord, new_instance_id
from synclease.lease.store import LeaseStore
from synclease.root import DaemonRoot
from synclease.settings import Settings
from synclease.singleton_view import live_singleton

log = logging.getLogger("synclease.daemon")
RETIRE_LOCK_TIMEOUT_SECONDS = 5.0
WORKER_STOP_TIMEOUT_SECONDS = 10.0
DRAIN_TICK_SECONDS = 0.05


@dataclass
class DaemonOptions:
    root: DaemonRoot
    settings: Settings
    clock: Clock
    version: str
    instance_id: str = field(default_factory=new_instance_id)
    managed: bool = False  # spawned by `ensure`, which holds the singleton lock and records us
    replace: bool = False


@dataclass
class _Flags:
    retire: bool = False
    shutdown: bool = False
    signals: int = 0


@dataclass(frozen=True)
class WorkIdentity:
    """What the lease and health say about the daemon's work (no secrets)."""

    auth_scope: str | None = None
    server_url: str | None = None
    queue_db_path: str | None = None
    session_id: str | None = None


class SyncDaemon:
    def __init__(
        self, opts: DaemonOptions, worker: Worker | None = None, work_identity: WorkIdentity | None = None
    ) -> None:
        self.opts = opts
        self.clock = opts.clock
        self.store = LeaseStore(opts.root)
        self.token = secrets.token_urlsafe(32)
        self.worker: Worker = worker or IdleWorker()
        self.work_identity = work_identity or WorkIdentity()
        self.tracker = RequestTracker(self.clock.monotonic())
        self.flags = _Flags()
        self.draining = False
        self.baseline_generation = 0
        self.started_at = self.clock.now()
        self.start_time = liveness.own_start_time()
        self.lease: LeaseRecord | None = None
        self.server: ControlServer | None = None
        self._holder = liveness.HolderLock(opts.root.holder_lock_path(opts.instance_id))
        self._wake_r, self._wake_w = socket.socketpair()
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)

    # --- the Controller protocol used by the HTTP server --------------------------------------

    def health(self) -> dict[str, Any]:
        lease = self.lease
        assert lease is not None
        status = self.worker.status()
        return {
            "daemon_family": "sync",
            "instance_id": lease.instance_id,
            "scope_id": lease.scope_id,
            "daemon_root": lease.daemon_root,
            "pid": lease.pid,
            "port": lease.port,
            "process_start_time": lease.process_start_time,
            "package_version": lease.package_version,
            "protocol_version": lease.protocol_version,
            "started_at": to_wire(self.started_at),
            "lease": {
                "state": lease.state,
                "renewed_at": to_wire(lease.renewed_at),
                "expires_at": to_wire(lease.expires_at),
            },
            "sync": {
                "running": bool(status.get("running", False)),
                "queue_depth": int(status.get("queue_depth", 0)),
                "last_sync": status.get("last_sync"),
                "consecutive_failures": int(status.get("consecutive_failures", 0)),
                "auth_problem": bool(status.get("auth_problem", False)),
            },
            "auth_scope": lease.auth_scope,
            "server_url": self.work_identity.server_url,
            "session_id": self.work_identity.session_id,
            "queue_db_path": lease.queue_db_path,
        }

    def request_retire(self) -> bool:
        if "ignore_retire" in self.opts.settings.failpoints:
            return False
        self.flags.retire = True
        self.poke()
        return True

    def request_shutdown(self) -> bool:
        if "ignore_retire" in self.opts.settings.failpoints:
            return False
        self.flags.shutdown = True
        self.poke()
        return True

    def kick(self) -> None:
        self.tracker.touch(self.clock.monotonic())
        self.worker.kick()

    def run_work(self, seconds: float) -> None:
        self.tracker.begin(self.clock.monotonic())
        try:
            threading.Event().wait(seconds)
        finally:
            self.tracker.end(self.clock.monotonic())

    def poke(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    # --- startup -----------------------------------------------------------------------------

    def start(self) -> None:
        """Take the holder lock, bind, write the lease; claim the singleton unless managed."""
        self._holder.acquire()
        if self.opts.managed:
            self.baseline_generation = self.store.next_generation() - 1
            self._bind_and_lease()
            return
        with self.store.singleton_lock():
            current = live_singleton(self.store, self.clock)
            if current is not None and not self.opts.replace:
                raise AlreadyRunningError(
                    f"a healthy sync daemon already serves this root (pid {current.lease.pid}, "
                    f"port {current.lease.port})",
                    hint="use `synclease sync run --replace` to supersede it",
                )
            self._bind_and_lease()
            self._record_self()
        if current is not None:
            httpc.post(current.lease.port, "/api/retire", current.lease.token, timeout=1.0)

    def _bind_and_lease(self) -> None:
        settings = self.opts.settings
        self.server = bind_first_free(
            settings.port_hint, settings.port_range, lambda p: ControlServer(p, self)
        )
        now = self.clock.now()
        root = self.opts.root
        self.lease = LeaseRecord(
            family="sync",
            instance_id=self.opts.instance_id,
            scope_id=root.scope_id,
            daemon_root=str(root.path),
            pid=os.getpid(),
            process_start_time=self.start_time,
            port=self.server.server_address[1],
            package_version=self.opts.version,
            protocol_version=PROTOCOL_VERSION,
            acquired_at=now,
            renewed_at=now,
            ttl_seconds=settings.lease_ttl_seconds,
            state="serving",
            token=self.token,
            auth_scope=self.work_identity.auth_scope,
            queue_db_path=self.work_identity.queue_db_path,
        )
        self.store.write(self.lease)

    def _record_self(self) -> None:
        assert self.lease is not None
        generation = self.store.next_generation()
        self.store.write_singleton(
            SingletonRecord(
                family="sync",
                instance_id=self.lease.instance_id,
                generation=generation,
                pid=self.lease.pid,
                port=self.lease.port,
                package_version=self.lease.package_version,
                protocol_version=self.lease.protocol_version,
                written_at=self.clock.now(),
            )
        )
        self.baseline_generation = generation

    # --- the loop ----------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        if "ignore_sigterm" in self.opts.settings.failpoints:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        else:
            signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: types.FrameType | None) -> None:
        self.flags.signals += 1
        if self.flags.signals > 1:
            os._exit(1)

    def serve(self) -> governor.Reason:
        """Serve until the governor says retire; returns the reason."""
        assert self.server is not None
        threading.Thread(target=self.server.serve_forever, name="control-plane", daemon=True).start()
        self.worker.start()
        log.info(
            "serving instance=%s port=%d version=%s pid=%d",
            self.opts.instance_id,
            self.server.server_address[1],
            self.opts.version,
            os.getpid(),
        )
        while True:
            decision = self.tick()
            if decision.action is governor.Action.RETIRE:
                assert decision.reason is not None
                return decision.reason
            if decision.action is governor.Action.DRAIN and not self.draining:
                self._begin_drain(decision.reason)
            self._sleep(DRAIN_TICK_SECONDS if self.draining else self.opts.settings.heartbeat_seconds)

    def _sleep(self, seconds: float) -> None:
        readable, _, _ = select.select([self._wake_r], [], [], seconds)
        if readable:
            with contextlib.suppress(OSError):
                while self._wake_r.recv(4096):
                    pass

    def tick(self) -> governor.Decision:
        """Renew the lease (unless stalled by a failpoint), observe, decide."""
        if "stall_heartbeat" in self.opts.settings.failpoints:
            return self._decide_stalled()
        lease_ours = self._renew()
        record = self.store.read_singleton().record
        if record is not None and record.instance_id == self.opts.instance_id:
            self.baseline_generation = max(self.baseline_generation, record.generation)
        superseded = record is not None and governor.is_superseded(
            record.instance_id, record.generation, self.opts.instance_id, self.baseline_generation
        )
        now = self.clock.monotonic()
        obs = governor.Observation(
            now=now,
            last_activity=max(self.tracker.last_activity, self.worker.last_activity_monotonic()),
            idle_retirement_seconds=self.opts.settings.idle_retirement_seconds,
            in_flight=self.tracker.active + int(self.worker.in_flight()),
            superseded=superseded,
            lease_still_ours=lease_ours,
            retire_requested=self.flags.retire,
            shutdown_requested=self.flags.shutdown,
            signalled=self.flags.signals > 0,
        )
        return governor.decide(obs)

    def _decide_stalled(self) -> governor.Decision:
        """``stall_heartbeat``: keep serving health, stop renewing and governing itself. Outside
        commands still count: a signal, or a retire/shutdown request (unless ``ignore_retire``)."""
        for flag, reason in (
            (self.flags.signals > 0, governor.Reason.SIGNAL),
            (self.flags.shutdown, governor.Reason.SHUTDOWN_REQUESTED),
            (self.flags.retire, governor.Reason.RETIRE_REQUESTED),
        ):
            if flag:
                return governor.Decision(governor.Action.RETIRE, reason)
        return governor.SERVE

    def _renew(self) -> bool:
        """Renew our lease if the file is still ours; False if it was revoked or replaced."""
        assert self.lease is not None
        current = self.store.read(self.lease.instance_id).lease
        if current is None or current.token != self.lease.token:
            return False
        self.lease = self.lease.renewed(self.clock.now(), "draining" if self.draining else None)
        self.store.write(self.lease)
        return True

    def _begin_drain(self, reason: governor.Reason | None) -> None:
        log.info("draining reason=%s", reason)
        self.draining = True
        self.worker.stop_claiming()
        self._renew()

    # --- retirement --------------------------------------------------------------------------

    def retire(self, reason: governor.Reason | str) -> None:
        """Release what is ours, close the port, drop the lease; bounded at every step."""
        log.info("retiring reason=%s instance=%s", reason, self.opts.instance_id)
        self.draining = True
        self.worker.stop(WORKER_STOP_TIMEOUT_SECONDS)
        self._release_singleton()
        if self.server is not None:
            self._stop_server(self.server)
        if self.lease is not None:
            self.store.delete_own(self.lease)
        with contextlib.suppress(Exception):
            self._holder.release()
        log.info("retired reason=%s instance=%s", reason, self.opts.instance_id)

    @staticmethod
    def _stop_server(server: ControlServer) -> None:
        """Stop ``serve_forever`` now: ask it to stop, then wake its selector with one connection."""
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        with (
            contextlib.suppress(OSError),
            socket.create_connection((LOOPBACK, server.server_address[1]), timeout=0.2),
        ):
            pass
        stopper.join(timeout=2.0)
        server.server_close()

    def _release_singleton(self) -> None:
        record = self.store.read_singleton().record
        if record is None or record.instance_id != self.opts.instance_id:
            return
        try:
            with self.store.singleton_lock(timeout=RETIRE_LOCK_TIMEOUT_SECONDS):
                self.store.clear_singleton_if(self.opts.instance_id)
        except SyncleaseError as exc:
            log.warning("could not release the singleton record: %s", exc.message)
