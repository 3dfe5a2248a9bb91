"""Hostile local clients of the control planes: bad Content-Length, huge bodies, foreign Host headers,
idle and dripping connections. Real daemons, real sockets, real RSS."""

from __future__ import annotations

import socket
import time

import pytest

from synclease.adapters import dashboard_store
from synclease.adapters.http_listener import REQUEST_DEADLINE_SECONDS
from tests.conftest import Sandbox, get_health, wait_for
from tests.faults.helpers import raw_exchange, rss_mib, serving_daemon, status_of
from tests.test_dashboard import Dashboards

pytestmark = pytest.mark.live


def post(port: int, path: str, length: str, token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Content-Length: {length}\r\n\r\n"
    return raw_exchange(port, head.encode())


@pytest.mark.parametrize(
    ("length", "authorized", "status"),
    [
        ("-1", False, 403),  # unauthorized anyway: decided before any body is read
        ("70000", False, 403),
        ("-1", True, 400),
        ("abc", True, 400),
        ("12 34", True, 400),
        ("70000", True, 413),
        (str(300 * 1024 * 1024), True, 413),
    ],
)
def test_sync_control_plane_refuses_bad_lengths_before_reading(
    sandbox: Sandbox, length: str, authorized: bool, status: int
) -> None:
    proc, lease = serving_daemon(sandbox)
    reply = post(lease["port"], "/api/retire", length, lease["token"] if authorized else None)
    assert status_of(reply) == status  # and the server closed the connection (raw_exchange returned)
    assert get_health(lease["port"]) is not None and proc.poll() is None
    assert "Traceback" not in proc.log_path.read_text()  # type: ignore[attr-defined]


def test_a_300_mib_body_costs_the_daemon_no_memory(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    proc, lease = serving_daemon(sandbox)
    before = rss_mib(proc.pid)
    chunk = b"x" * (1024 * 1024)
    sent = 0
    for authorized in (False, True):
        auth = f"Authorization: Bearer {lease['token']}\r\n" if authorized else ""
        head = f"POST /api/retire HTTP/1.1\r\nHost: 127.0.0.1:{lease['port']}\r\n{auth}Content-Length: -1\r\n\r\n"
        with socket.create_connection(("127.0.0.1", lease["port"]), timeout=10) as sock:
            sock.sendall(head.encode())
            try:
                for _ in range(300):
                    sock.sendall(chunk)
                    sent += len(chunk)
            except OSError:
                pass  # the server refused and closed: the rest of the body never left
    after = rss_mib(proc.pid)
    with capsys.disabled():
        print(
            f"\nMEASURE body attack: RSS {before:.1f} MiB before, {after:.1f} MiB after ({sent >> 20} MiB sent)"
        )
    assert after - before < 10, (before, after)
    assert get_health(lease["port"]) is not None and proc.poll() is None


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("attacker.example", False),
        ("attacker.example:{port}", False),
        ("127.0.0.1:1", False),  # a loopback name on another port: a rebinding page's origin
        ("127.0.0.1:{port}", True),
        ("localhost:{port}", True),
        ("[::1]:{port}", True),
        ("LOCALHOST", True),
    ],
)
def test_host_allow_list_guards_every_route(sandbox: Sandbox, host: str, allowed: bool) -> None:
    _proc, lease = serving_daemon(sandbox)
    port = lease["port"]
    named = host.format(port=port)
    reply = raw_exchange(port, f"GET /api/health HTTP/1.1\r\nHost: {named}\r\n\r\n".encode())
    assert status_of(reply) == (200 if allowed else 403)
    retire = f"POST /api/retire HTTP/1.1\r\nHost: {named}\r\nAuthorization: Bearer {lease['token']}\r\n\r\n"
    if not allowed:
        assert status_of(raw_exchange(port, retire.encode())) == 403
        assert get_health(port) is not None
    # An HTTP/1.0 client with no Host at all (our own probe's old peers) is still answered.
    assert status_of(raw_exchange(port, b"GET /api/health HTTP/1.0\r\n\r\n")) == 200


def test_idle_and_dripping_connections_are_closed_while_health_answers(sandbox: Sandbox) -> None:
    _proc, lease = serving_daemon(sandbox)
    port = lease["port"]
    bound = REQUEST_DEADLINE_SECONDS + 5
    idle = socket.create_connection(("127.0.0.1", port), timeout=bound)
    drip = socket.create_connection(("127.0.0.1", port), timeout=bound)
    try:
        drip.sendall(b"G")
        dripped = 1
        for byte in b"ET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"z" * 60:
            assert get_health(port, timeout=1.0) is not None  # a new client is answered meanwhile
            try:
                drip.sendall(bytes([byte]))
            except OSError:
                break  # closed by the daemon
            dripped += 1
            time.sleep(0.4)  # the client's hostile pace, not synchronisation
        assert dripped < 30, "a dripping request was allowed to go on past its deadline"
        assert idle.recv(1) == b""  # the idle one was closed too (within the bound, or recv times out)
    finally:
        idle.close()
        drip.close()
    wait_for(lambda: get_health(port) is not None)


def test_dashboard_control_plane_refuses_bad_lengths_and_hosts(sandbox: Sandbox, tmp_path: object) -> None:
    from pathlib import Path

    dash = Dashboards(sandbox, Path(str(tmp_path)) / "projects")
    dash.base.mkdir()
    try:
        project = dash.project()
        started = dash.start(project)
        port = started["port"]
        record = dashboard_store.read(project).record
        assert record is not None
        assert status_of(post(port, "/api/shutdown", "-1")) == 403
        assert status_of(post(port, "/api/shutdown", "-1", record.token)) == 400
        assert status_of(post(port, "/api/shutdown", "99999999", record.token)) == 413
        reply = raw_exchange(port, b"GET /api/health HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        assert status_of(reply) == 403
        assert get_health(port) is not None
    finally:
        dash.reap()
