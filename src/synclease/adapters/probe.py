"""The probe: what listens on a family's ports, which process holds each, and what it says of itself.

A scan reads the OS listener table once (:mod:`.process`, on one helper thread) while it asks every
port at once, on one ``poll`` (:func:`.http_client.exchange`): a short TCP connect (the gate) and, on
that connection, ``GET /api/health``, within one hard deadline. Nothing here raises for an odd, slow,
hostile or vanished listener, and nothing here signals or writes anything: every failure is data on
the observation.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from typing import Any

from synclease.adapters import http_client, process
from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.core.clock import Clock
from synclease.core.constants import FAMILY_RANGES, HEALTH_TIMEOUT_SECONDS, SYNC
from synclease.core.fleet import Listener, Observation, ScanResult
from synclease.core.health import parse_health
from synclease.core.record import record

HEALTH_PATH = "/api/health"
GATE_TIMEOUT_SECONDS = 0.05
#: The OS listener table gets at most this long once the probes are done (the scan stays bounded).
TABLE_DEADLINE_SECONDS = 2.0


def tcp_gate(port: int, timeout: float = GATE_TIMEOUT_SECONDS) -> bool:
    """True if something accepts a TCP connection on 127.0.0.1:``port`` within ``timeout``."""
    sock = http_client.connect(port, timeout)
    if sock is None:
        return False
    sock.close()
    return True


def _health_of(reply: http_client.Reply) -> tuple[dict[str, Any] | None, str | None]:
    if reply.status is not None and reply.status != 200:
        return None, f"http_{reply.status}"
    if reply.error is not None:
        return None, reply.error
    if not isinstance(reply.document, dict):
        return None, "not_object"
    return reply.document, None


def fetch_health(
    port: int, timeout: float = HEALTH_TIMEOUT_SECONDS
) -> tuple[dict[str, Any] | None, str | None]:
    """``GET /api/health`` within ``timeout`` overall: the JSON object or an error tag; never raises
    for what answers."""
    return _health_of(http_client.request(port, "GET", HEALTH_PATH, timeout=timeout))


@record
class _Probe:
    port: int
    connected: bool
    document: dict[str, Any] | None
    error: str | None


def _probe_all(ports: range, gate_timeout: float, health_timeout: float) -> list[_Probe]:
    calls = [http_client.Call(port, "GET", HEALTH_PATH) for port in ports]
    replies = http_client.exchange(calls, gate_timeout + health_timeout, connect_timeout=gate_timeout)
    probes = []
    for port, reply in zip(ports, replies, strict=True):
        if not reply.connected:
            probes.append(_Probe(port, False, None, "connect_failed"))
        else:
            probes.append(_Probe(port, True, *_health_of(reply)))
    return probes


def _read_table_aside(ports: range) -> tuple[threading.Thread, list[tuple[dict[int, Listener], str | None]]]:
    """Read the OS listener table on a helper thread (it walks every process's descriptors while the
    probes wait on the network); join the thread, then take the one result."""
    result: list[tuple[dict[int, Listener], str | None]] = []

    def read() -> None:
        try:
            result.append(process.read_listener_table(ports))
        except Exception as exc:  # the table is evidence; its absence is data, never a crash
            result.append(({}, f"unreadable:{type(exc).__name__}"))

    reader = threading.Thread(target=read, name="synclease-listeners", daemon=True)
    reader.start()
    return reader, result


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
            listener = process.verify_listener(probe.port, candidates)
    return Observation(listener, health, probe.error)


def _check_ports(ports: range, family: str) -> None:
    allowed = FAMILY_RANGES[family]
    if ports.step != 1 or (len(ports) and (ports.start < allowed.start or ports.stop > allowed.stop)):
        raise ValueError(f"ports {ports} are not inside the {family} family range {allowed}")


def scan(
    ports: range,
    *,
    family: str = SYNC,
    clock: Clock = SYSTEM_CLOCK,
    gate_timeout: float = GATE_TIMEOUT_SECONDS,
    health_timeout: float = HEALTH_TIMEOUT_SECONDS,
    claimed_pids: Mapping[int, Collection[int]] | None = None,
) -> ScanResult:
    """Probe every port of ``ports`` (inside ``family``'s range, else ValueError) at once.

    ``claimed_pids`` (port → PIDs that leases name) only serve the fallback when the OS table is
    unreadable: a claimed PID counts when the kernel lists the socket among that process's own.
    """
    _check_ports(ports, family)
    started = clock.monotonic()
    claimed = claimed_pids or {}
    reader, table_read = _read_table_aside(ports)
    probes = _probe_all(ports, gate_timeout, health_timeout)
    # A real thread's join, bounded (not the clock's wait: a test clock cannot make the kernel's table
    # arrive sooner). Past the bound the table counts as unreadable: the scan ends by the probes'
    # deadline plus TABLE_DEADLINE_SECONDS at most.
    reader.join(TABLE_DEADLINE_SECONDS)
    table, table_error = table_read[0] if table_read else ({}, "unreadable:timeout")
    observations = [_observe(p, table, table_error, claimed.get(p.port, ())) for p in probes]
    return ScanResult(
        observations=tuple(obs for obs in observations if obs is not None),
        ports_scanned=len(ports),
        duration_ms=(clock.monotonic() - started) * 1000.0,
        listener_table_error=table_error,
    )
