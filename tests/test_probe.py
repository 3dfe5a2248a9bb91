"""The probe against real loopback sockets of this test process, on a block of test ports.

Nothing here binds anything but 127.0.0.1, and nothing signals any process.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from synclease.adapters import procfs
from synclease.adapters.listeners import listener_table, read_listener_table
from synclease.adapters.probe import fetch_health, scan, tcp_gate
from synclease.adapters.process import build_listener_table, own_start_time
from synclease.core.fleet import Listener
from synclease.core.health import parse_health
from synclease.core.identity import same_start
from tests.clocks import FakeClock
from tests.conftest import GENERAL_PORTS
from tests.neighbours import Reply, ReplyServer, silent_listener

#: The top ten ports of this run's test range, or all of a narrower one (only their free ones are bound).
TEST_PORTS = range(max(GENERAL_PORTS.start, GENERAL_PORTS.stop - 10), GENERAL_PORTS.stop)


def health_doc(port: int) -> dict[str, Any]:
    return {
        "daemon_family": "sync",
        "instance_id": "inst-probe-0001",
        "scope_id": "0123456789abcdef",
        "daemon_root": "/tmp/synclease-probe-root",
        "pid": os.getpid(),
        "port": port,
        "process_start_time": own_start_time(),
        "package_version": "3.2.4",
        "protocol_version": 1,
        "started_at": "2026-03-01T10:00:00.000000Z",
        "lease": {
            "state": "serving",
            "renewed_at": "2026-03-01T10:00:02.000000Z",
            "expires_at": "2026-03-01T10:00:12.000000Z",
        },
        "sync": {"running": True, "queue_depth": 0, "last_sync": None, "consecutive_failures": 0},
        "auth_scope": None,
        "server_url": None,
        "queue_db_path": None,
    }


@dataclass
class Servers:
    http_port: int
    raw_port: int
    free_port: int
    http: ReplyServer

    def answer(
        self, body: bytes | dict[str, Any], status: int = 200, content_type: str = "application/json"
    ) -> None:
        self.http.answer(body, status, content_type)


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT of earlier tests is free
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return not tcp_gate(port)


@pytest.fixture
def servers() -> Iterator[Servers]:
    free = [port for port in TEST_PORTS if _free(port)]
    if len(free) < 3:
        pytest.skip(f"needs 3 free ports in {TEST_PORTS.start}-{TEST_PORTS.stop - 1}, found {free}")
    http_port, raw_port, free_port = free[:3]
    server = ReplyServer(http_port, Reply(body=json.dumps(health_doc(http_port)).encode()))
    raw = silent_listener(raw_port)  # never accepts: the kernel completes handshakes, nobody answers
    try:
        yield Servers(http_port, raw_port, free_port, server)
    finally:
        raw.close()
        server.close()


# --- the OS listener table ----------------------------------------------------------------------


def test_listener_table_maps_our_ports_to_this_process(servers: Servers) -> None:
    table = listener_table(TEST_PORTS)
    for port in (servers.http_port, servers.raw_port):
        entry = table[port]
        assert entry.pid == os.getpid()
        assert same_start(own_start_time(), entry.pid_start_time)
    assert servers.free_port not in table


def test_listener_table_without_start_time_when_the_process_is_unreadable(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(pid: int) -> list[bytes] | None:
        raise PermissionError(pid)

    monkeypatch.setattr(procfs, "_stat_fields", denied)
    entry = listener_table(TEST_PORTS)[servers.http_port]
    assert (entry.pid, entry.pid_start_time) == (os.getpid(), None)


def test_listener_table_access_denied_is_data(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the kernel table (as on macOS) the one walk is psutil's, and its refusal is data."""

    def denied(kind: str = "inet") -> list[Any]:
        raise psutil.AccessDenied()

    monkeypatch.setenv("SYNCLEASE_FAILPOINTS", "no_kernel_table")
    monkeypatch.setattr(psutil, "net_connections", denied)
    assert read_listener_table(TEST_PORTS, {servers.http_port: [1]}) == ({}, "access_denied")
    assert listener_table(TEST_PORTS) == {}


def conn(ip: str, port: int, pid: int | None, status: str = psutil.CONN_LISTEN) -> SimpleNamespace:
    return SimpleNamespace(laddr=(ip, port), status=status, pid=pid)


def test_build_listener_table_is_strict_about_addresses_and_ambiguity() -> None:
    connections = [
        conn("0.0.0.0", 9401, 10),
        conn("127.0.0.1", 9401, 11),  # a specific loopback bind wins over the wildcard
        conn("127.0.0.1", 9402, 20),
        conn("127.0.0.1", 9402, 21),  # two processes on one socket address: unknown
        conn("::1", 9403, 30),  # not reachable on 127.0.0.1
        conn("192.168.1.5", 9404, 40),
        conn("127.0.0.1", 9405, 50, status=psutil.CONN_ESTABLISHED),
        conn("::", 9406, 60),
        conn("127.0.0.1", 9460, 70),  # outside the asked range
        conn("127.0.0.1", 9407, None),  # another user's socket
    ]
    table = build_listener_table(connections, range(9400, 9450))
    assert table == {
        9401: Listener(9401, 11),
        9402: Listener(9402, None),
        9406: Listener(9406, 60),
        9407: Listener(9407, None),
    }


# --- gate and health ----------------------------------------------------------------------------


def test_tcp_gate(servers: Servers) -> None:
    assert tcp_gate(servers.http_port)
    assert tcp_gate(servers.raw_port)
    assert not tcp_gate(servers.free_port)


def test_fetch_health_parses_a_sync_self_report(servers: Servers) -> None:
    document, error = fetch_health(servers.http_port)
    assert error is None and document is not None
    report = parse_health(document)
    assert report is not None and report.sync_like
    assert (report.pid, report.port, report.instance_id) == (
        os.getpid(),
        servers.http_port,
        "inst-probe-0001",
    )


@pytest.mark.parametrize(
    ("status", "content_type", "body", "error"),
    [
        (200, "text/html", b"<html>hello</html>", "not_json"),
        (200, "application/json", b"[1, 2, 3]", "not_object"),
        (200, "application/json", b'{"a": NaN}', "not_json"),
        (200, "application/json", b"\xff\xfe{}", "not_json"),
        (200, "application/json", b'{"pad": "' + b"x" * (70 * 1024) + b'"}', "too_large"),
        (404, "text/html", b"<h1>Not Found</h1>", "http_404"),
        (500, "application/json", b"{}", "http_500"),
    ],
    ids=["html", "array", "nan", "binary", "huge", "404", "500"],
)
def test_fetch_health_errors_are_data(
    servers: Servers, status: int, content_type: str, body: bytes, error: str
) -> None:
    servers.answer(body, status, content_type)
    assert fetch_health(servers.http_port) == (None, error)


def test_fetch_health_closed_port_and_silent_listener(servers: Servers) -> None:
    assert fetch_health(servers.free_port) == (None, "connect_refused")
    assert fetch_health(servers.raw_port, timeout=0.2) == (None, "timeout")


# --- the scan -----------------------------------------------------------------------------------


def test_scan_observes_each_listener_once(servers: Servers) -> None:
    clock = FakeClock(tick=0.0375)
    result = scan(TEST_PORTS, clock=clock, health_timeout=0.2)
    assert clock.wall_reads == 0  # the scan does not read wall time
    by_port = {obs.port: obs for obs in result.observations}
    assert result.ports_scanned == len(TEST_PORTS)
    assert result.duration_ms == pytest.approx(37.5)
    assert result.timings() == {"ports_scanned": len(TEST_PORTS), "duration_ms": 37.5}
    assert [obs.port for obs in result.observations] == sorted(by_port)
    assert servers.free_port not in by_port

    served = by_port[servers.http_port]
    assert served.listener.pid == os.getpid() and served.health_error is None
    assert served.health is not None and served.health.sync_like

    silent = by_port[servers.raw_port]
    assert silent.listener.pid is None  # nothing claims it and it speaks no family: not worth the walk
    assert (silent.health, silent.health_error) == (None, "timeout")
    claimed = scan(TEST_PORTS, health_timeout=0.2, claimed_pids={servers.raw_port: [os.getpid()]})
    assert {obs.port: obs.listener.pid for obs in claimed.observations}[servers.raw_port] == os.getpid()


def test_scan_without_the_kernel_table_proves_claimed_pids_one_by_one(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-PID path (macOS's primary one), forced on Linux: each claim is proven by that PID's own
    connections, and the whole-host table is never asked when every listener is claimed."""

    def denied(kind: str = "inet") -> list[Any]:
        raise psutil.AccessDenied()

    monkeypatch.setenv("SYNCLEASE_FAILPOINTS", "no_kernel_table")
    monkeypatch.setattr(psutil, "net_connections", denied)
    result = scan(TEST_PORTS, health_timeout=0.2, claimed_pids={servers.raw_port: [os.getpid(), 1]})
    by_port = {obs.port: obs for obs in result.observations}
    assert result.listener_table_error is None
    assert by_port[servers.http_port].listener.pid == os.getpid()  # claimed by its self-report
    assert by_port[servers.raw_port].listener.pid == os.getpid()  # claimed by a lease


def test_scan_with_unverifiable_claims_leaves_the_pid_unknown(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(kind: str = "inet") -> list[Any]:
        raise psutil.AccessDenied()

    monkeypatch.setenv("SYNCLEASE_FAILPOINTS", "no_kernel_table")
    monkeypatch.setattr(psutil, "net_connections", denied)
    servers.answer(health_doc(servers.http_port) | {"pid": 1})  # a claim the kernel does not back
    result = scan(TEST_PORTS, health_timeout=0.2)
    by_port = {obs.port: obs for obs in result.observations}
    assert by_port[servers.http_port].listener == Listener(servers.http_port)
    assert by_port[servers.raw_port].listener == Listener(servers.raw_port)


def test_an_exchange_asks_every_port_at_once_and_keeps_the_order(servers: Servers) -> None:
    from synclease.adapters.http_client import Call, exchange

    ports = [servers.free_port, servers.http_port, servers.raw_port, servers.http_port]
    replies = exchange([Call(port, "GET", "/api/health") for port in ports], 0.4, connect_timeout=0.2)
    refused, first, silent, second = replies
    assert (refused.error, refused.connected) == ("connect_refused", False)
    assert first.ok and second.ok and first.document == second.document == health_doc(servers.http_port)
    assert (silent.status, silent.error, silent.connected) == (None, "timeout", True)  # accepted, mute


def test_one_deadline_bounds_every_exchange_together(servers: Servers) -> None:
    import time

    from synclease.adapters.http_client import Call, exchange

    started = time.monotonic()
    replies = exchange([Call(servers.raw_port, "GET", "/") for _ in range(8)], 0.3)
    assert time.monotonic() - started < 0.3 + 0.25  # eight mute peers cost one deadline, not eight
    assert {reply.error for reply in replies} == {"timeout"}


def test_an_exchange_of_nothing_is_nothing() -> None:
    from synclease.adapters.http_client import exchange

    assert exchange([], 0.1) == []


def test_a_probe_that_blows_up_is_data(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    from synclease.core import http_wire

    def boom(self: Any, chunk: bytes) -> Any:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(http_wire.ResponseReader, "feed", boom)
    result = scan(range(servers.http_port, servers.http_port + 1))
    assert [obs.health_error for obs in result.observations] == ["probe_error:RuntimeError"]


@pytest.mark.parametrize(
    "ports", [range(9300, 9401), range(9449, 9451), range(9237, 9240), range(9400, 9450, 2)]
)
def test_scan_refuses_ports_outside_the_family_range(ports: range) -> None:
    with pytest.raises(ValueError, match="family range"):
        scan(ports)
