"""The dashboard's HTTP server: threaded, bound to 127.0.0.1 only.

Routes: ``GET /`` (the self-contained page), ``GET /api/health`` (no auth, no secrets),
``GET /api/fleet`` (the doctor document, read-only), token-protected ``POST /api/shutdown``.
Requests whose ``Host`` header names anything but a loopback host are refused (DNS rebinding): a web
page elsewhere must not read the fleet through the user's browser.
"""

from __future__ import annotations

import hmac
import json
import logging
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from synclease.constants import LOOPBACK
from synclease.dashboard.page import CONTENT_SECURITY_POLICY, PAGE_BYTES

log = logging.getLogger("synclease.dashboard")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
MAX_REQUEST_BODY_BYTES = 64 * 1024


class Controller(Protocol):
    """What the server needs from the dashboard lifecycle (:mod:`.runner`)."""

    token: str

    def health(self) -> dict[str, Any]: ...
    def fleet(self) -> tuple[int, dict[str, Any]]: ...
    def request_shutdown(self) -> None: ...


class DashboardServer(ThreadingHTTPServer):
    """``SO_REUSEADDR`` on Linux only: there it just lets a restarted dashboard take back its port while
    old connections sit in TIME_WAIT (it never allows a second listener). On BSD/macOS it would let a
    specific-address bind shadow another program's wildcard listener, so it stays off there."""

    daemon_threads = True
    allow_reuse_address = sys.platform.startswith("linux")

    def __init__(self, port: int, controller: Controller) -> None:
        self.controller = controller
        super().__init__((LOOPBACK, port), _Handler)


def host_allowed(host: str | None) -> bool:
    """Pure: a missing Host (HTTP/1.0 probes) or a loopback host name, with or without a port."""
    if not host:
        return True
    name = host.strip().lower()
    if name.startswith("["):
        name = name[: name.find("]") + 1] if "]" in name else name
    else:
        name = name.rsplit(":", 1)[0]
    return name in LOOPBACK_HOSTS


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    protocol_version = "HTTP/1.0"
    server_version = "synclease-dashboard"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", self.requestline)

    def _send_bytes(
        self, status: int, data: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, allow_nan=False).encode()
        self._send_bytes(status, data, "application/json")

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        expected = self.server.controller.token
        return scheme == "Bearer" and hmac.compare_digest(presented.encode(), expected.encode())

    def do_GET(self) -> None:
        if not host_allowed(self.headers.get("Host")):
            self._send(403, {"error": "forbidden_host"})
            return
        path = urlsplit(self.path).path
        controller = self.server.controller
        if path == "/api/health":
            self._send(200, controller.health())
        elif path == "/api/fleet":
            try:
                status, document = controller.fleet()
            except Exception as exc:  # a bug must not take the page down: report it
                log.exception("fleet document failed")
                status, document = 500, {"error": f"{type(exc).__name__}: {exc}"[:300]}
            self._send(status, document)
        elif path in ("/", "/index.html"):
            self._send_bytes(
                200,
                PAGE_BYTES,
                "text/html; charset=utf-8",
                {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Frame-Options": "DENY"},
            )
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length") or "0"
        if length.isdigit() and int(length):
            self.rfile.read(min(int(length), MAX_REQUEST_BODY_BYTES))
        if urlsplit(self.path).path != "/api/shutdown":
            self._send(404, {"error": "not_found"})
            return
        if not host_allowed(self.headers.get("Host")) or not self._authorized():
            self._send(403, {"error": "forbidden"})
            return
        # Answer first, then ask the lifecycle to stop: the reply is on the wire before the port closes.
        self._send(202, {"accepted": True})
        self.wfile.flush()
        self.server.controller.request_shutdown()
