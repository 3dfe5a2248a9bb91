"""The wall between the families, proven live (ADR 0005).

For each cleanup entrypoint (sync startup reaper, ``auth doctor --reset``, ``--reset --force``,
dashboard start cleanup) and each neighbour kind (a real sync daemon, a real dashboard, a third-party
HTTP server, a raw TCP listener) on each edge port (first, last and just-outside ports of both
ranges), the neighbour must survive and receive no signal. A real daemon can only bind inside its own
range, so on the other ports the sync or dashboard neighbour is an impostor answering that family's
health shape. Placement rotates in four rounds so that every kind stands on every port once.

The entrypoints scan a whole family range, so a case runs only once it has proven that every listener
in the range it sweeps is one it started (or ``.ci/run``'s declared sentinel, which must survive like a
neighbour): anything else (the user's own daemon, another run's) makes the case skip, saying which port
and PID, and nothing is swept over it (issue 20).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from synclease.adapters.root import scope_id_for
from synclease.core.constants import DASHBOARD_PORT_RANGE, SYNC_PORT_RANGE
from tests import neighbours
from tests.conftest import (
    SENTINEL_PID,
    Sandbox,
    get_health,
    listening_pids,
    port_free,
    strangers,
    wait_for,
)
from tests.test_dashboard import Dashboards, free_hint

pytestmark = pytest.mark.live

EDGE_PORTS = (9399, 9400, 9449, 9450, 9236, 9237, 9336, 9337)
KINDS = ("http", "sync", "raw", "dashboard")
ENTRYPOINTS = ("sync_start", "reset", "reset_force", "dashboard_start")
ROUNDS = range(len(KINDS))


def kind_at(index: int, round_: int) -> str:
    return KINDS[(index + round_) % len(KINDS)]


@dataclass
class Neighbour:
    port: int
    kind: str
    pid: int
    start_time: float
    real: bool
    signal_log: Path | None

    def survived(self) -> bool:
        try:
            proc = psutil.Process(self.pid)
            return proc.status() != psutil.STATUS_ZOMBIE and abs(proc.create_time() - self.start_time) < 0.05
        except psutil.NoSuchProcess:
            return False

    def signals(self) -> list[str]:
        if self.signal_log is None or not self.signal_log.exists():
            return []
        return self.signal_log.read_text().split()


@pytest.fixture(scope="module")
def free_edges() -> tuple[int, ...]:
    free = tuple(port for port in EDGE_PORTS if port_free(port))
    taken = sorted(set(EDGE_PORTS) - set(free))
    if taken:
        print(f"boundary matrix: skipping edge ports genuinely taken by someone else: {taken}")
    if not free:
        pytest.skip("every edge port is taken by another program")
    return free


@pytest.fixture
def world(sandbox: Sandbox, tmp_path: Path) -> Iterator[tuple[Sandbox, Dashboards]]:
    """The sandbox with the whole sync range (the edges are in play) and a dashboard reaper."""
    sandbox.env.pop("SYNCLEASE_PORT_RANGE")
    sandbox.env.pop("SYNCLEASE_PORT_HINT")
    dashboards = Dashboards(sandbox, tmp_path / "projects")
    dashboards.base.mkdir()
    try:
        yield sandbox, dashboards
    finally:
        dashboards.reap()


def _spawn_listener(box: Sandbox, kind: str, port: int, health: dict[str, Any] | None) -> Neighbour:
    log = box.root.parent / f"signals-{port}.log"
    command = neighbours.argv("impostor" if health else kind, port, log, health, ignore=True)
    proc = box.popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    return Neighbour(port, kind, proc.pid, psutil.Process(proc.pid).create_time(), False, log)


def _real(port: int, kind: str, pid: int) -> Neighbour:
    return Neighbour(port, kind, pid, psutil.Process(pid).create_time(), True, None)


def place(box: Sandbox, dashboards: Dashboards, entry_project: Path, port: int, kind: str) -> Neighbour:
    if kind in ("http", "raw"):
        return _spawn_listener(box, kind, port, None)
    if kind == "sync" and port in SYNC_PORT_RANGE:
        started = box.cli_json("sync", "start", env={"SYNCLEASE_PORT_HINT": str(port)})
        assert started["port"] == port
        return _real(port, kind, started["pid"])
    if kind == "dashboard" and port in DASHBOARD_PORT_RANGE:
        other = dashboards.project("other-project")
        doc = box.cli_json("dashboard", "--project", str(other), "--port-hint", str(port))
        assert doc["port"] == port
        return _real(port, kind, doc["pid"])
    if kind == "sync":  # outside the sync range: an impostor claiming to be a daemon of this very root
        health = {
            "daemon_family": "sync",
            "instance_id": "impostor00000001",
            "scope_id": scope_id_for(box.root.resolve()),
            "daemon_root": str(box.root.resolve()),
            "pid": "SELF_PID",
            "port": "SELF_PORT",
            "package_version": "3.2.2",
            "protocol_version": 1,
        }
    else:  # outside the dashboard range: an impostor claiming the entrypoint's own project
        health = {
            "daemon_family": "dashboard",
            "project": str(entry_project),
            "pid": "SELF_PID",
            "port": "SELF_PORT",
        }
    return _spawn_listener(box, kind, port, health)


def swept_range(entry: str) -> range:
    return DASHBOARD_PORT_RANGE if entry == "dashboard_start" else SYNC_PORT_RANGE


def prove_alone(box: Sandbox, entry: str, neighbours: list[Neighbour]) -> None:
    """Skip the case unless every listener in the range ``entry`` sweeps is one this test started."""
    started = {n.pid for n in neighbours} | {child.pid for child in box.children}
    others = strangers(swept_range(entry), lambda pid: pid in started or box.owns(pid))
    if others:
        found = ", ".join(
            f"{port} (pid {pid if pid is not None else 'unknown'})" for port, pid in others.items()
        )
        pytest.skip(f"{entry}: not sweeping over listeners this test did not start: {found}")


def sentinel(entry: str) -> Neighbour | None:
    """The CI sentinel as a neighbour that must survive, when it listens in the swept range."""
    port = next((p for p, pid in listening_pids(swept_range(entry)).items() if pid == SENTINEL_PID), None)
    if SENTINEL_PID is None or port is None:
        return None
    return Neighbour(port, "sync", SENTINEL_PID, psutil.Process(SENTINEL_PID).create_time(), True, None)


def run_entrypoint(box: Sandbox, entry: str, project: Path) -> dict[str, Any]:
    if entry == "sync_start":
        return box.cli_json("sync", "start")
    if entry == "reset":
        return box.cli_json("auth", "doctor", "--reset", ok=(0, 1))
    if entry == "reset_force":
        return box.cli_json("auth", "doctor", "--reset", "--force", ok=(0, 1))
    return box.cli_json("dashboard", "--project", str(project), "--port-hint", str(free_hint()), ok=(0, 1))


@pytest.mark.parametrize("round_", ROUNDS)
@pytest.mark.parametrize("entry", ENTRYPOINTS)
def test_cleanup_never_crosses_the_wall(
    world: tuple[Sandbox, Dashboards], free_edges: tuple[int, ...], entry: str, round_: int
) -> None:
    box, dashboards = world
    prove_alone(box, entry, [])
    box.root.mkdir(mode=0o700)
    project = dashboards.project("entry")
    layout = [(port, kind_at(EDGE_PORTS.index(port), round_)) for port in free_edges]
    # Real daemons first, so nothing else is listening yet when `sync start` binds its edge port.
    layout.sort(key=lambda pk: pk[1] not in ("sync", "dashboard"))
    neighbours = [place(box, dashboards, project, port, kind) for port, kind in layout]
    for n in neighbours:
        wait_for(lambda n=n: not port_free(n.port))
    prove_alone(box, entry, neighbours)
    guard = sentinel(entry)
    if guard is not None:
        neighbours.append(guard)

    result = run_entrypoint(box, entry, project)

    wrongful = [n for n in neighbours if not n.survived() or n.signals()]
    assert wrongful == [], f"{entry} round {round_}: {[(n.kind, n.port, n.signals()) for n in wrongful]}"
    touched = {item.get("pid") for item in result.get("reset_result", {}).get("swept", [])}
    touched |= {item.get("pid") for item in result.get("reset_result", {}).get("failed", [])}
    cleanup = result.get("cleanup") or {}
    touched |= {item.get("pid") for item in cleanup.get("swept", []) + cleanup.get("failed", [])}
    assert touched.isdisjoint({n.pid for n in neighbours})
    for n in neighbours:
        if n.real and n.kind == "sync":
            health = get_health(n.port)
            assert health is not None and health["pid"] == n.pid
    if entry == "dashboard_start":
        assert os.path.exists(project / ".kittify" / ".dashboard")
