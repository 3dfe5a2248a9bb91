"""Waits go through the clock and wake on events, not on ticks (issue #24; ADR 0015).

Unit tests on a fake clock, no real sleeps: the daemon loop, the drain, the idle retirement, the
lease renewed at most once a heartbeat, the worker's stop, the control plane's stop and its handler
threads, the renewal's write without fsync.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from synclease.adapters import fsio, http_listener
from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.http_server import ControlServer, Response, Route
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.queue import open_queue
from synclease.adapters.root import DaemonRoot
from synclease.core.settings import Settings
from synclease.daemons.lifecycle import FORCED_DRAIN_SECONDS, Daemon, Leave
from synclease.daemons.sync.daemon import DaemonOptions, SyncDaemon
from synclease.daemons.sync.wiring import WorkSetup
from synclease.daemons.sync.worker import SyncWorker
from tests.clocks import FakeClock, RecordingClock
from tests.conftest import allocate_ports, get_health, wait_for

# --- the shared loop -------------------------------------------------------------------------------


class Scripted(Daemon):
    """A daemon whose steps are a script; no server."""

    def __init__(self, clock: FakeClock, steps: list[Leave | float | None]) -> None:
        super().__init__(clock)
        self.steps = steps

    def startup(self) -> ControlServer:  # pragma: no cover - not used
        raise NotImplementedError

    def step(self) -> Leave | float | None:
        return self.steps.pop(0) if self.steps else 1.0

    def shutdown(self, reason: str, deadline: float) -> None:  # pragma: no cover - not used
        pass

    def on_serving(self) -> None:  # pragma: no cover - not used
        pass


def test_the_loop_waits_through_the_clock() -> None:
    clock = FakeClock()
    daemon = Scripted(clock, [5.0, 7.0, Leave("done")])
    try:
        assert daemon._loop() == "done"
    finally:
        daemon.waker.close()
    assert clock.slept == [5.0, 7.0]  # the fake clock waited; nothing really slept


def test_a_poke_ends_the_wait_and_is_cleared_before_the_next_step() -> None:
    clock = FakeClock()
    daemon = Scripted(clock, [5.0, 5.0, Leave("done")])
    daemon.waker.poke()
    try:
        assert daemon._loop() == "done"
    finally:
        daemon.waker.close()
    assert clock.slept == [5.0]  # the first wait saw the poke; the second waited in full


def test_a_second_signal_cuts_the_drain_at_its_deadline_without_ticking() -> None:
    clock = FakeClock()
    daemon = Scripted(clock, [])  # always "wait a second"
    daemon.signals = 2
    try:
        assert daemon._loop() == "signal"
    finally:
        daemon.waker.close()
    assert sum(clock.slept) == pytest.approx(FORCED_DRAIN_SECONDS)
    assert len(clock.slept) <= FORCED_DRAIN_SECONDS + 1  # a wait per step, never 50 ms ticks


# --- the sync daemon's drain, renewals and idle retirement ------------------------------------------


class FakeWorker:
    """What the daemon sees of its worker; ``settle()`` ends the batch as the real one does."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.busy = False
        self.claiming = True
        self.activity = clock.monotonic()
        self.settled: Callable[[], None] | None = None

    def on_settled(self, callback: Callable[[], None]) -> None:
        self.settled = callback

    def settle(self) -> None:
        self.busy = False
        self.activity = self.clock.monotonic()
        assert self.settled is not None, "the daemon must ask to be told when a batch settles"
        self.settled()

    def in_flight(self) -> bool:
        return self.busy

    def stop_claiming(self) -> None:
        self.claiming = False

    def last_activity_monotonic(self) -> float:
        return self.activity

    def start(self) -> None:
        pass

    def stop(self, timeout: float) -> None:
        pass


class CountingStore(LeaseStore):
    def __init__(self, root: DaemonRoot) -> None:
        super().__init__(root)
        self.writes: list[str] = []

    def write(self, lease: Any, *, durable: bool = True) -> None:
        self.writes.append(lease.state)
        super().write(lease, durable=durable)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[SyncDaemon, FakeWorker, FakeClock, CountingStore]]:
    clock = FakeClock()
    root = DaemonRoot(tmp_path / "root").prepare()
    ports = allocate_ports()
    settings = Settings(
        heartbeat_seconds=2.0, idle_retirement_seconds=60.0, port_range=ports, port_hint=ports.start
    )
    worker = FakeWorker(clock)
    work = WorkSetup(worker, None, None, str(tmp_path / "queue.db"), None)  # type: ignore[arg-type]
    sync = SyncDaemon(DaemonOptions(root, settings, clock, "9.9.9", managed=True), work)
    store = CountingStore(root)
    sync.store = sync.keeper.store = store
    server = sync.startup()
    try:
        yield sync, worker, clock, store
    finally:
        server.server_close()
        sync.waker.close()


def test_drain_waits_for_the_settled_batch_not_a_tick(
    daemon: tuple[SyncDaemon, FakeWorker, FakeClock, CountingStore],
) -> None:
    sync, worker, _, store = daemon
    worker.busy = True
    assert sync.request_retire("operator_stop")
    sync.waker.clear()
    wait = sync.step()
    assert sync.draining and not worker.claiming
    assert wait == pytest.approx(2.0)  # a heartbeat: the settled batch wakes the loop, no 50 ms tick
    for _ in range(10):  # steps while the upload is in flight write no lease
        assert sync.step() == pytest.approx(2.0)
    assert store.writes == ["serving", "draining"]  # the start, then the state change, once
    assert not sync.waker.is_set()
    worker.settle()
    assert sync.waker.is_set()  # the loop wakes now
    assert sync.step() == Leave("retire_requested")


def test_lease_is_renewed_once_a_heartbeat_however_often_the_loop_steps(
    daemon: tuple[SyncDaemon, FakeWorker, FakeClock, CountingStore],
) -> None:
    sync, _, clock, store = daemon
    for _ in range(4):  # pokes between heartbeats (control requests) do not renew
        clock.advance(0.4)
        wait = sync.step()
        assert isinstance(wait, float) and wait <= 2.0
    assert store.writes == ["serving"]
    clock.advance(0.4)  # 2.0 s since the write
    assert sync.step() == pytest.approx(2.0)
    assert store.writes == ["serving", "serving"]
    clock.advance(1.5)
    assert sync.step() == pytest.approx(0.5)  # wakes for the renewal due, not a full heartbeat later


def test_idle_retirement_on_a_fake_clock(
    daemon: tuple[SyncDaemon, FakeWorker, FakeClock, CountingStore],
) -> None:
    sync, _, clock, store = daemon
    steps = 0
    while not isinstance(outcome := sync.step(), Leave):
        assert isinstance(outcome, float) and outcome > 0
        clock.advance(outcome)
        steps += 1
        assert steps < 100
    assert outcome == Leave("idle")
    assert steps == 30  # one step a heartbeat over the 60 s of idleness
    assert len(store.writes) == 31


# --- the worker -----------------------------------------------------------------------------------


def test_worker_stop_waits_through_the_clock_and_without_a_session_sleeps_long(tmp_path: Path) -> None:
    from synclease.daemons.sync.worker import NO_SESSION_WAIT_SECONDS

    clock = RecordingClock(ceiling=0.5)
    queue = open_queue(DaemonRoot(tmp_path / "root").prepare(), None, clock)
    worker = SyncWorker(queue, None, "inst-w", clock)
    worker.start()
    assert wait_for(lambda: NO_SESSION_WAIT_SECONDS in clock.snapshot(), 10.0)
    worker.stop(7.5)
    assert 7.5 in clock.snapshot()  # the join went through the clock
    assert not worker.is_alive()


# --- the control plane ----------------------------------------------------------------------------


def _server() -> ControlServer:
    ports = allocate_ports()
    health = Route("GET", "/api/health", lambda request: Response.json(200, {"ok": True}))
    for port in ports:
        try:
            return ControlServer(port, [health], "test")
        except OSError:
            continue
    raise AssertionError("no free port")


def test_idle_control_plane_has_no_handler_thread_and_no_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_listener, "HANDLER_IDLE_SECONDS", 0.2)
    server = _server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert server.handler_threads == 0
        assert server._timeout(1000.0, 0.0) is None  # nothing pending: sleep until a descriptor is ready
        assert get_health(server.port) == {"ok": True}
        assert server.handler_threads == 1
        assert wait_for(lambda: server.handler_threads == 0, 10.0)  # ended after its idle time
        assert get_health(server.port) == {"ok": True}  # and a new request starts one again
    finally:
        assert server.shutdown(5.0)
        server.server_close()


def test_stopping_the_control_plane_opens_no_connection_to_itself() -> None:
    server = _server()
    accepted: list[socket.socket] = []
    original = server._accept

    def counting(selector: Any) -> bool:
        accepted.append(server.socket)
        return original(selector)

    server._accept = counting  # type: ignore[method-assign]

    class Plane(Scripted):
        pass

    plane = Plane(SYSTEM_CLOCK, [])  # type: ignore[arg-type]
    plane.server = server
    plane._serving = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        plane.stop_server(SYSTEM_CLOCK.monotonic() + 5.0)
        assert server.stopped.is_set()
    finally:
        plane.waker.close()
    assert accepted == []  # woken through the listener's socketpair, not a TCP connection


# --- the renewal's write --------------------------------------------------------------------------


def test_a_renewal_syncs_its_data_but_not_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash never leaves a torn or empty lease (the data is synced before the rename); a renewal
    only skips making the rename itself durable (ADR 0015)."""
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    fsio.atomic_write(tmp_path / "a.json", b"{}")
    assert len(synced) == 2  # the file and its directory
    fsio.atomic_write(tmp_path / "a.json", b"{ }", durable=False)
    assert len(synced) == 3  # the file only
    assert (tmp_path / "a.json").read_bytes() == b"{ }"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temp file left


# --- the lease store's and the probe's time ---------------------------------------------------------


def test_next_generation_reads_the_given_clock(tmp_path: Path) -> None:
    store = LeaseStore(DaemonRoot(tmp_path / "root").prepare())
    clock = FakeClock()  # 2030-01-01
    assert store.next_generation(clock) == int(clock.now().timestamp() * 1000)


def test_a_scan_does_not_wait_past_its_deadline_for_the_listener_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from synclease.adapters import listeners, probe

    stuck = threading.Event()
    release = threading.Timer(10.0, stuck.set)  # only so that a broken bound ends the test at all
    release.start()
    monkeypatch.setattr(probe, "TABLE_DEADLINE_SECONDS", 0.2)
    monkeypatch.setattr(
        listeners,
        "read_table",
        lambda ports: (stuck.wait(), listeners.TableRead({}, listeners.SOURCE_PER_PID, None))[1],
    )
    try:
        result = probe.scan(allocate_ports())
    finally:
        stuck.set()
        release.cancel()
    assert result.listener_table_error == "unreadable:timeout"
    assert result.duration_ms < 5000


# --- the sweep's dead leases ------------------------------------------------------------------------


def test_dead_leases_are_dropped_on_one_shared_wait(tmp_path: Path) -> None:
    import subprocess
    import sys

    from synclease.adapters.locks import HolderLock
    from synclease.services import sweep
    from tests.test_lease_store import make_lease

    store = LeaseStore(DaemonRoot(tmp_path / "root").prepare())
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a PID that no longer exists: the lease's holder was killed
    paths, locks = [], []
    for n in range(3):
        lease = make_lease(f"dead-inst-000{n}", pid=gone.pid)
        store.write(lease)
        paths.append(store.root.lease_path(lease.instance_id))
        lock = HolderLock(store.root.holder_lock_path(lease.instance_id))
        lock.acquire()  # the kernel has not yet dropped the killed holder's lock
        locks.append(lock)
    clock = FakeClock()
    sweep._drop_dead_leases(store, paths, clock)
    assert sum(clock.slept) == pytest.approx(sweep.STEP_TIMEOUT_SECONDS)  # once, not once per lease
    assert all(path.exists() for path in paths)  # a held lock keeps its lease
    for lock in locks:
        lock.release()
    sweep._drop_dead_leases(store, paths, clock)
    assert not any(path.exists() for path in paths)
    assert sum(clock.slept) == pytest.approx(sweep.STEP_TIMEOUT_SECONDS)
