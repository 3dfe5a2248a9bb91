"""What the fault modules share: a serving foreground daemon, and a raw loopback client."""

from __future__ import annotations

import socket
import subprocess
from typing import Any

import psutil

from tests.conftest import Sandbox, get_health, wait_for


def serving_daemon(
    box: Sandbox, *args: str, env: dict[str, str] | None = None, **popen: Any
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """``sync run`` in ``box``; returns the process and its lease once it answers health."""
    proc = box.run_daemon(*args, env=env, **popen)

    def ready() -> dict[str, Any] | None:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited {proc.returncode}: {proc.log_path.read_text()}")  # type: ignore[attr-defined]
        for lease in box.leases():
            if lease.get("pid") == proc.pid and get_health(lease["port"]) is not None:
                return lease
        return None

    lease: dict[str, Any] = wait_for(ready)
    return proc, lease


def raw_exchange(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Send ``request`` bytes as they are and read until the server closes (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    return b"".join(chunks)


def status_of(reply: bytes) -> int | None:
    head = reply.split(b"\r\n", 1)[0].split()
    return int(head[1]) if len(head) >= 2 and head[1].isdigit() else None


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / (1024 * 1024)
