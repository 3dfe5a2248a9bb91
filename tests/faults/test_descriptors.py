"""Descriptor exhaustion: a daemon started with ``RLIMIT_NOFILE`` 256 while a local client holds a
thousand idle connections open against it. It must keep answering health to a new client within a
second, keep renewing its lease, and never read a failed open as "my lease was revoked"."""

from __future__ import annotations

import contextlib
import resource
import socket
from collections.abc import Iterator

import pytest

from synclease.adapters import http_client
from tests.conftest import Sandbox, get_health, renewed_past
from tests.faults.helpers import serving_daemon

pytestmark = pytest.mark.live

DAEMON_NOFILE = 256
IDLE_CONNECTIONS = 1000


def low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (DAEMON_NOFILE, DAEMON_NOFILE))


@contextlib.contextmanager
def idle_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that never send a byte (this test process gets the descriptors)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < count + 200:
        pytest.skip(f"the test needs {count + 200} descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, count + 200), hard))
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.connect(("127.0.0.1", port))
            held.append(sock)
        yield held
    finally:
        for sock in held:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_thousand_idle_connections_do_not_silence_a_daemon_at_256_descriptors(sandbox: Sandbox) -> None:
    proc, lease = serving_daemon(sandbox, preexec_fn=low_nofile)
    port = lease["port"]
    with idle_connections(port, IDLE_CONNECTIONS):
        for attempt in range(10):
            # A new client is answered within a second, again and again, while the thousand wait.
            reply = http_client.get_json(port, "/api/health", 1.0)
            assert reply.ok, f"attempt {attempt}: {reply.error or reply.status}"
        renewed_past(sandbox, lease["instance_id"], 2.0)  # and it keeps renewing its lease
        assert proc.poll() is None
    log = proc.log_path.read_text()  # type: ignore[attr-defined]
    assert "retiring" not in log and "Traceback" not in log
    assert get_health(port, timeout=1.0) is not None
