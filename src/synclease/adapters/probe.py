"""The probe: what listens on a family's ports, which process holds each, and what it says of itself.

A scan reads the kernel's listener table once (:mod:`.listeners`, on one helper thread) while it asks every
port at once, on one ``poll`` (:func:`.http_client.exchange`): a short TCP connect (the gate) and, on
that connection, ``GET /api/health``, within one hard deadline. Nothing here raises for an odd, slow,
hostile or vanished listener, and nothing here signals or writes anything: every failure is data on
the observation.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from typing import Any

from synclease.adapters import http_client, listeners
from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.core.clock import Clock
from synclease.core.constants import HEALTH_TIMEOUT_SECONDS
from synclease.core.family import SYNC_FAMILY, Family
from synclease.core.fleet import Listener, Observation, ScanResult
from synclease.core.health import HealthReport, parse_health
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


def _probe_all(ports: range, path: str, gate_timeout: float, health_timeout: float) -> list[_Probe]:
    calls = [http_client.Call(port, "GET", path) for port in ports]
    replies = http_client.exchange(calls, gate_timeout + health_timeout, connect_timeout=gate_timeout)
    probes = []
    for port, reply in zip(ports, replies, strict=True):
        if not reply.connected:
            probes.append(_Probe(port, False, None, "connect_failed"))
        else:
            probes.append(_Probe(port, True, *_health_of(reply)))
    return probes


def _read_table_aside(ports: range) -> tuple[threading.Thread, list[listeners.TableRead]]:
    """Read the kernel's listener table on a helper thread while the probes wait on the network (the
    ``/proc/net`` fallback takes a few ms); join the thread, then take the one result."""
    result: list[listeners.TableRead] = []

    def read() -> None:
        try:
            result.append(listeners.read_table(ports))
        except Exception as exc:  # the table is evidence; its absence is data, never a crash
            result.append(
                listeners.TableRead({}, listeners.SOURCE_PER_PID, f"unreadable:{type(exc).__name__}")
            )

    reader = threading.Thread(target=read, name="synclease-listeners", daemon=True)
    reader.start()
    return reader, result


def _want(probe: _Probe, claimed: Collection[int]) -> tuple[listeners.Want, HealthReport | None]:
    """The PIDs that claim a port (leases, the singleton record, its own self-report) and whether a
    finding needs its owner if none of them is proven: when claimed, or when it speaks a family."""
    health = parse_health(probe.document)
    claims = set(claimed)
    if health is not None and health.pid is not None:
        claims.add(health.pid)
    speaks = health is not None and (health.sync_like or health.family is not None)
    return listeners.Want(tuple(sorted(claims)), bool(claims) or speaks), health


def _observe_all(
    probes: list[_Probe], read: listeners.TableRead, claimed: Mapping[int, Collection[int]]
) -> tuple[list[Observation], str | None]:
    wants = {p.port: _want(p, claimed.get(p.port, ())) for p in probes}
    ports = [p.port for p in probes if p.connected or p.port in read.sockets]
    resolver = listeners.Resolver(read)
    table = resolver.resolve({port: wants[port][0] for port in ports})
    observations = []
    for probe in probes:
        if probe.port not in table:
            continue
        listener = table[probe.port] or Listener(probe.port)
        observations.append(Observation(listener, wants[probe.port][1], probe.error))
    return observations, resolver.error


def scan(
    ports: range,
    *,
    family: Family = SYNC_FAMILY,
    clock: Clock = SYSTEM_CLOCK,
    gate_timeout: float = GATE_TIMEOUT_SECONDS,
    health_timeout: float = HEALTH_TIMEOUT_SECONDS,
    claimed_pids: Mapping[int, Collection[int]] | None = None,
) -> ScanResult:
    """Probe every port of ``ports`` (inside ``family``'s range, else ValueError) at once.

    ``claimed_pids`` (port → PIDs that leases or the singleton record name) and each self-report's PID
    are the claims a listener's PID is proven from (:mod:`.listeners`).
    """
    family.check_range(ports)
    started = clock.monotonic()
    reader, table_read = _read_table_aside(ports)
    probes = _probe_all(ports, family.health_path, gate_timeout, health_timeout)
    # A real thread's join, bounded (not the clock's wait: a test clock cannot make the kernel's table
    # arrive sooner). Past the bound the table counts as unreadable: the scan ends by the probes'
    # deadline plus TABLE_DEADLINE_SECONDS at most.
    reader.join(TABLE_DEADLINE_SECONDS)
    read = (
        table_read[0]
        if table_read
        else listeners.TableRead({}, listeners.SOURCE_PER_PID, "unreadable:timeout")
    )
    observations, table_error = _observe_all(probes, read, claimed_pids or {})
    return ScanResult(
        observations=tuple(observations),
        ports_scanned=len(ports),
        duration_ms=(clock.monotonic() - started) * 1000.0,
        listener_table_error=table_error,
    )
