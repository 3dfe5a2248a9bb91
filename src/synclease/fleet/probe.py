"""The probe: what listens on the family's ports, which process holds each, and what it says of itself.

The one I/O adapter of the fleet. A scan reads the OS listener table once (psutil), and in parallel
across all ports makes a short TCP connect (the gate) and, on the same connection, asks
``GET /api/health``. Nothing here raises for an odd, slow, hostile or vanished listener, and nothing
here signals or writes anything: every failure is data on the :class:`Observation`.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psutil

from synclease.clock import SYSTEM_CLOCK, Clock
from synclease.constants import FAMILY_RANGES, LOOPBACK
from synclease.fleet.health import parse_health
from synclease.fleet.model import FleetContext, Listener, Observation
from synclease.lease.store import LeaseStore

HEALTH_PATH = "/api/health"
GATE_TIMEOUT_SECONDS = 0.05
HEALTH_TIMEOUT_SECONDS = 0.5
MAX_HEALTH_BYTES = 64 * 1024
MAX_WORKERS = 64
#: Listening addresses a connection to 127.0.0.1 can reach, best first: a specific loopback bind wins
#: over a wildcard one on the same port (that is what the kernel routes to).
REACHABLE_ADDRESSES: Mapping[str, int] = {"127.0.0.1": 0, "::ffff:127.0.0.1": 0, "0.0.0.0": 1, "::": 1}


class _TooLarge(Exception):
    pass


# --- the OS listener table ----------------------------------------------------------------------


def _start_time(pid: int, cache: dict[int, float | None]) -> float | None:
    if pid not in cache:
        try:
            cache[pid] = psutil.Process(pid).create_time()
        except (psutil.Error, OSError):
            cache[pid] = None
    return cache[pid]


def _listening_on(conn: Any, ports: range) -> tuple[int, int] | None:
    """``(port, address rank)`` of a LISTEN socket on a reachable address in ``ports``, else None."""
    if conn.status != psutil.CONN_LISTEN or not conn.laddr:
        return None
    ip, port = conn.laddr[0], conn.laddr[1]
    rank = REACHABLE_ADDRESSES.get(ip)
    if rank is None or port not in ports:
        return None
    return port, rank


def build_listener_table(connections: Collection[Any], ports: range) -> dict[int, Listener]:
    """Pure part of :func:`listener_table` (start times aside): the best-ranked listener per port.

    Two different PIDs on the same port at the same rank (``SO_REUSEPORT``, an inherited socket) are
    ambiguous, so that port's PID is unknown.
    """
    best: dict[int, tuple[int, set[int | None]]] = {}
    for conn in connections:
        found = _listening_on(conn, ports)
        if found is None:
            continue
        port, rank = found
        current = best.get(port)
        if current is None or rank < current[0]:
            best[port] = (rank, {conn.pid})
        elif rank == current[0]:
            current[1].add(conn.pid)
    table: dict[int, Listener] = {}
    for port, (_rank, pids) in best.items():
        pid = next(iter(pids)) if len(pids) == 1 else None
        table[port] = Listener(port, pid, None)
    return table


def read_listener_table(ports: range) -> tuple[dict[int, Listener], str | None]:
    """Port → :class:`Listener` from one read of the OS table, and an error tag if it was unreadable.

    ``psutil.AccessDenied`` on the whole table (macOS without root) gives an empty table and
    ``"access_denied"``; a socket of another user's process has PID None; a process whose start time
    cannot be read has ``pid_start_time`` None.
    """
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return {}, "access_denied"
    except (psutil.Error, OSError) as exc:
        return {}, f"unreadable:{type(exc).__name__}"
    table = build_listener_table(connections, ports)
    cache: dict[int, float | None] = {}
    for port, entry in table.items():
        if entry.pid is not None:
            table[port] = Listener(port, entry.pid, _start_time(entry.pid, cache))
    return table, None


def listener_table(ports: range) -> dict[int, Listener]:
    """Port → :class:`Listener` for every TCP LISTEN socket reachable on 127.0.0.1 in ``ports``."""
    return read_listener_table(ports)[0]


def verify_listener(port: int, candidates: Collection[int]) -> Listener:
    """Fallback when the whole table is unreadable: which of the claimed PIDs (from a self-report or a
    lease) the kernel shows listening on ``port`` in its own connection list. Exactly one → that PID."""
    confirmed: list[int] = []
    for pid in sorted(set(candidates)):
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except (psutil.Error, OSError):
            continue
        if any(_listening_on(conn, range(port, port + 1)) for conn in connections):
            confirmed.append(pid)
    if len(confirmed) != 1:
        return Listener(port)
    return Listener(port, confirmed[0], _start_time(confirmed[0], {}))


# --- the gate and the health probe --------------------------------------------------------------


def _connect(port: int, timeout: float) -> socket.socket | None:
    try:
        return socket.create_connection((LOOPBACK, port), timeout=timeout)
    except OSError:
        return None


def tcp_gate(port: int, timeout: float = GATE_TIMEOUT_SECONDS) -> bool:
    """True if something accepts a TCP connection on 127.0.0.1:``port`` within ``timeout``."""
    sock = _connect(port, timeout)
    if sock is None:
        return False
    sock.close()
    return True


def _read_body(response: http.client.HTTPResponse, sock: socket.socket, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        _arm(sock, deadline)
        chunk = response.read1(16 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_HEALTH_BYTES:
            raise _TooLarge
        chunks.append(chunk)


def _arm(sock: socket.socket, deadline: float) -> None:
    """Bound the next socket operation by what is left of the overall deadline."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("health probe deadline passed")
    sock.settimeout(remaining)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_health_body(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """A health body → the JSON object, or an error tag (``not_json``, ``not_object``)."""
    try:
        doc = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, "not_json"
    if not isinstance(doc, dict):
        return None, "not_object"
    return doc, None


def _error_tag(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connect_refused"
    if isinstance(exc, ConnectionError):
        return "connection_closed"
    if isinstance(exc, _TooLarge):
        return "too_large"
    if isinstance(exc, http.client.HTTPException):
        return f"bad_http:{type(exc).__name__}"
    return f"os_error:{type(exc).__name__}"


def fetch_health(
    port: int, timeout: float = HEALTH_TIMEOUT_SECONDS, *, sock: socket.socket | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """``GET /api/health`` on 127.0.0.1:``port`` within ``timeout`` overall (reusing ``sock`` if given,
    which it then closes). Returns the JSON object or an error tag; never raises for what answers."""
    deadline = time.monotonic() + timeout
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    response: http.client.HTTPResponse | None = None
    try:
        if sock is None:
            conn.connect()
        else:
            conn.sock = sock
        raw = conn.sock  # kept: the connection lets go of it once the response is read
        _arm(raw, deadline)
        conn.request("GET", HEALTH_PATH, headers={"Accept": "application/json", "Connection": "close"})
        _arm(raw, deadline)
        response = conn.getresponse()
        if response.status != http.HTTPStatus.OK:
            return None, f"http_{response.status}"
        body = _read_body(response, raw, deadline)
    except (OSError, http.client.HTTPException, _TooLarge) as exc:
        return None, _error_tag(exc)
    finally:
        if response is not None:
            response.close()
        conn.close()
        if sock is not None:
            sock.close()
    return decode_health_body(body)


# --- the scan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanResult:
    """Every port with a listener, in port order, and what the scan cost."""

    observations: tuple[Observation, ...]
    ports_scanned: int
    duration_ms: float
    listener_table_error: str | None = None

    def timings(self) -> dict[str, Any]:
        return {"ports_scanned": self.ports_scanned, "duration_ms": round(self.duration_ms, 3)}


@dataclass(frozen=True)
class _Probe:
    port: int
    connected: bool
    document: dict[str, Any] | None
    error: str | None


def _probe_port(port: int, gate_timeout: float, health_timeout: float) -> _Probe:
    sock = _connect(port, gate_timeout)
    if sock is None:
        return _Probe(port, False, None, "connect_failed")
    try:
        document, error = fetch_health(port, health_timeout, sock=sock)
    except Exception as exc:  # a probe never takes the scan down; the failure is data
        sock.close()
        return _Probe(port, True, None, f"probe_error:{type(exc).__name__}")
    return _Probe(port, True, document, error)


def _observe(
    probe: _Probe, table: Mapping[int, Listener], table_error: str | None, claimed: Collection[int]
) -> Observation | None:
    listener = table.get(probe.port)
    if listener is None and not probe.connected:
        return None
    health = parse_health(probe.document)
    if listener is None:
        listener = Listener(probe.port)
        candidates = set(claimed) | ({health.pid} if health is not None and health.pid is not None else set())
        if table_error is not None and candidates:
            listener = verify_listener(probe.port, candidates)
    return Observation(listener, health, probe.error)


def _check_ports(ports: range, family: str) -> None:
    allowed = FAMILY_RANGES[family]
    if ports.step != 1 or (len(ports) and (ports.start < allowed.start or ports.stop > allowed.stop)):
        raise ValueError(f"ports {ports} are not inside the {family} family range {allowed}")


def scan(
    ports: range,
    *,
    family: str = "sync",
    clock: Clock = SYSTEM_CLOCK,
    gate_timeout: float = GATE_TIMEOUT_SECONDS,
    health_timeout: float = HEALTH_TIMEOUT_SECONDS,
    claimed_pids: Mapping[int, Collection[int]] | None = None,
) -> ScanResult:
    """Probe every port of ``ports`` (inside ``family``'s range, else ValueError) in parallel.

    ``claimed_pids`` (port → PIDs that leases name) only serve the fallback when the OS table is
    unreadable: a claimed PID counts when the kernel lists the socket among that process's own.
    """
    _check_ports(ports, family)
    started = clock.monotonic()
    claimed = claimed_pids or {}
    workers = max(1, min(MAX_WORKERS, len(ports) + 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="synclease-probe") as pool:
        table_future = pool.submit(read_listener_table, ports)
        probes = list(pool.map(lambda port: _probe_port(port, gate_timeout, health_timeout), ports))
        table, table_error = table_future.result()
    observations = [_observe(p, table, table_error, claimed.get(p.port, ())) for p in probes]
    return ScanResult(
        observations=tuple(obs for obs in observations if obs is not None),
        ports_scanned=len(ports),
        duration_ms=(clock.monotonic() - started) * 1000.0,
        listener_table_error=table_error,
    )


def read_context(store: LeaseStore, now: datetime, port_range: range) -> FleetContext:
    """This root's leases and singleton record, as the context to classify a scan in."""
    return FleetContext(
        scope_id=store.root.scope_id,
        daemon_root=str(store.root.path),
        now=now,
        leases=tuple(store.list()),
        singleton=store.read_singleton().record,
        port_range=port_range,
    )
