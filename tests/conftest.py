"""Shared fixtures for live tests: a temp daemon root, a private port block, and a reaper that always runs.

Every live test gets its own root and its own block of ports inside the sync range (never 9400 and
never the range edges: those belong to the boundary matrix). At teardown the sandbox kills, by PID,
only processes it can prove it started: its own Popen children, and daemons whose environment names
its root.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from synclease.core.clock import from_wire
from tests.receiver import Receiver


def _general_ports() -> range:
    """9401-9448 (9400 and 9449 are left to the boundary matrix), or the ``LO-HI`` sub-range named by
    ``SYNCLEASE_TEST_PORTS``, so two runs on one machine can each keep to their own ports."""
    raw = os.environ.get("SYNCLEASE_TEST_PORTS", "").strip()
    if not raw:
        return range(9401, 9449)
    lo, _, hi = raw.partition("-")
    ports = range(int(lo), int(hi) + 1)
    assert ports.start >= 9401 and ports.stop <= 9449, f"SYNCLEASE_TEST_PORTS={raw} is outside 9401-9448"
    return ports


GENERAL_PORTS = _general_ports()
BLOCK = 4
PORT_WAIT_SECONDS = 60.0
_random = random.Random()


def port_free(port: int) -> bool:
    """Nobody listens on ``port`` (TIME_WAIT leftovers of earlier connections do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_block(size: int) -> range | None:
    """A free block tried from a random aligned start, so concurrent runs on one host rarely collide."""
    starts = list(range(GENERAL_PORTS.start, GENERAL_PORTS.stop - size + 1, BLOCK))
    _random.shuffle(starts)
    for start in starts:
        block = range(start, start + size)
        if all(port_free(p) for p in block):
            return block
    return None


def allocate_ports(size: int = BLOCK) -> range:
    """A block of ``size`` consecutive free ports inside the general test range; waits for one (a
    test that just ended may still be closing its daemons) and skips only if none frees up."""
    deadline = time.monotonic() + PORT_WAIT_SECONDS
    while True:
        block = _free_block(size)
        if block is not None:
            return block
        if time.monotonic() > deadline:
            pytest.skip(
                f"no free block of {size} test ports in {GENERAL_PORTS.start}-{GENERAL_PORTS.stop - 1} "
                f"within {PORT_WAIT_SECONDS:.0f}s"
            )
        time.sleep(0.5)


#: The one default bound of every wait in the tests.
WAIT_SECONDS = 30.0


def wait_for(
    predicate: Callable[[], Any], timeout: float = WAIT_SECONDS, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy (and return that); fail at the deadline.

    The interval is a polling period, not synchronisation: the predicate decides."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or predicate} not met within {timeout}s")
        time.sleep(interval)


def get_health(port: int, timeout: float = 1.0) -> dict[str, Any] | None:
    from synclease.adapters import http_client as httpc

    reply = httpc.get_json(port, "/api/health", timeout)
    return reply.document if reply.ok and isinstance(reply.document, dict) else None


def listening_pids(ports: range) -> dict[int, int | None]:
    table: dict[int, int | None] = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port in ports:
            table[conn.laddr.port] = conn.pid
    return table


#: A listener the CI run started on purpose (``.ci/run``'s sentinel, ``SYNCLEASE_TEST_SENTINEL=PID``): a
#: test may sweep over it, and must leave it serving (the matrix asserts it survives like a neighbour).
SENTINEL_PID = int(os.environ.get("SYNCLEASE_TEST_SENTINEL", "0") or 0) or None


def strangers(ports: range, ours: Callable[[int], bool]) -> dict[int, int | None]:
    """The listeners on ``ports`` that a test cannot prove it started (``ours(pid)`` False), by port;
    PID None when the OS would not say. The declared CI sentinel is not a stranger."""
    return {
        port: pid
        for port, pid in listening_pids(ports).items()
        if pid is None or not (ours(pid) or pid == SENTINEL_PID)
    }


def pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def login(box: Sandbox, rx: Receiver, token: str = "sltok-test-0000", principal: str = "alice") -> None:
    """``auth login`` in ``box`` against the receiver ``rx``, the token on stdin."""
    proc = box.cli(
        "auth", "login", "--server", rx.url, "--principal", principal, input=(token + "\n").encode()
    )
    assert proc.returncode == 0, proc.stderr
    assert token not in proc.stdout + proc.stderr


def ndjson(count: int, tag: str) -> bytes:
    lines = (json.dumps({"type": "test.event", "data": {"tag": tag, "n": n}}) for n in range(count))
    return ("\n".join(lines) + "\n").encode()


def push(box: Sandbox, count: int, tag: str = "e", env: dict[str, str] | None = None) -> dict[str, Any]:
    """``sync push - --json`` with ``count`` NDJSON events; returns its document (ids, daemon)."""
    proc = box.cli("sync", "push", "-", "--json", input=ndjson(count, tag), env=env)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    assert doc["enqueued"] == count and len(set(doc["ids"])) == count
    if doc["daemon"] is not None:
        box.extra_pids.add(doc["daemon"]["pid"])
    return doc


def lease_of(box: Sandbox, instance_id: str) -> dict[str, Any] | None:
    return next((lease for lease in box.leases() if lease.get("instance_id") == instance_id), None)


def renewed_past(box: Sandbox, instance_id: str, seconds: float) -> None:
    """Wait until the daemon has renewed its lease ``seconds`` after now: its own heartbeat is the clock
    (each renewal is one governor tick), so this proves it kept ticking without a bare sleep."""
    target = datetime.now(UTC) + timedelta(seconds=seconds)

    def renewed() -> bool:
        lease = lease_of(box, instance_id)
        return lease is not None and from_wire(lease["renewed_at"]) > target

    wait_for(renewed, timeout=seconds + 20)


def hold_a_batch(box: Sandbox, rx: Receiver, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Real work in flight: the receiver holds every upload, one event is pushed (which ensures a
    daemon), and its batch has reached the receiver. ``rx.release()`` lets it complete."""
    rx.hold()
    doc = push(box, 1, "held", env=env)
    assert rx.wait_for(lambda: rx.arrived >= 1), "the pushed batch never reached the receiver"
    return doc


@dataclass
class Sandbox:
    root: Path
    ports: range
    env: dict[str, str]
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    extra_pids: set[int] = field(default_factory=set)

    def cli(
        self, *args: str, env: dict[str, str] | None = None, input: bytes | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "synclease", *args],
            env={**self.env, **(env or {})},
            input=input.decode() if input is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            doc = json.loads(proc.stdout)
            if isinstance(doc, dict) and isinstance(doc.get("pid"), int):
                self.extra_pids.add(doc["pid"])
        return proc

    def cli_json(self, *args: str, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> Any:
        proc = self.cli(*args, "--json", env=env)
        assert proc.returncode in ok, f"exit {proc.returncode}: {proc.stderr}"
        return json.loads(proc.stdout)

    def popen(self, argv: list[str], env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, env={**self.env, **(env or {})}, **kw)
        self.children.append(proc)
        return proc

    def popen_logged(
        self, argv: list[str], name: str, env: dict[str, str] | None = None, **popen: Any
    ) -> subprocess.Popen[bytes]:
        """``argv`` as a direct child, no stdin, its output in ``<name>-<n>.log`` beside the root
        (the path is the process's ``log_path``)."""
        log = self.root.parent / f"{name}-{len(self.children)}.log"
        with open(log, "wb") as handle:
            proc = self.popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, **popen
            )
        proc.log_path = log  # type: ignore[attr-defined]
        return proc

    def run_daemon(
        self, *args: str, env: dict[str, str] | None = None, **popen: Any
    ) -> subprocess.Popen[bytes]:
        """``synclease sync run`` as a direct child, its output in a file under the root."""
        return self.popen_logged(
            [sys.executable, "-m", "synclease", "sync", "run", *args], "fg", env, **popen
        )

    def listeners(self) -> dict[int, int | None]:
        return listening_pids(self.ports)

    def leases(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted((self.root / "leases" / "sync").glob("*.json")):
            with contextlib.suppress(ValueError, OSError):
                out.append(json.loads(path.read_text()))
        return out

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted((self.root / "logs").glob("*.log")))

    def owns(self, pid: int) -> bool:
        """Proof that ``pid`` is a daemon of this sandbox: its environment names our root."""
        return self._ours(pid)

    def _ours(self, pid: int) -> bool:
        """Proof that ``pid`` is a daemon of this sandbox: its environment names our root."""
        try:
            environ = psutil.Process(pid).environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False
        return environ.get("SYNCLEASE_HOME") == str(self.root)

    def reap(self) -> None:
        pids = set(self.extra_pids)
        pids.update(lease["pid"] for lease in self.leases() if isinstance(lease.get("pid"), int))
        pids.update(pid for pid in listening_pids(self.ports).values() if pid is not None)
        child_pids = {c.pid for c in self.children}
        for pid in pids - child_pids:
            if self._ours(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        for child in self.children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)
        for pid in pids - child_pids:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
                psutil.Process(pid).wait(timeout=5) if self._ours(pid) else None


def make_env(root: Path, ports: range, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLEASE_")}
    env.update(
        SYNCLEASE_HOME=str(root),
        SYNCLEASE_PORT_RANGE=f"{ports.start}-{ports.stop - 1}",
        SYNCLEASE_PORT_HINT=str(ports.start),
        SYNCLEASE_HEARTBEAT_SECONDS="0.2",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    root = tmp_path / "root"
    ports = allocate_ports()
    box = Sandbox(root=root, ports=ports, env=make_env(root, ports))
    try:
        yield box
    finally:
        box.reap()


@pytest.fixture
def rx() -> Iterator[Receiver]:
    """A loopback upstream on an ephemeral port outside the reserved ranges (see tests/receiver.py)."""
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Callable[..., Sandbox]]:
    """More than one sandbox in a test (e.g. two roots); each is reaped at teardown."""
    made: list[Sandbox] = []

    def make(name: str = "root", size: int = BLOCK) -> Sandbox:
        root = tmp_path / f"{name}-{len(made)}"
        ports = allocate_ports(size)
        box = Sandbox(root=root, ports=ports, env=make_env(root, ports))
        made.append(box)
        return box

    try:
        yield make
    finally:
        for box in made:
            box.reap()
