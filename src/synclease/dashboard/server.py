"""The dashboard's HTTP server: threaded, bound to 127.0.0.1 only.

Routes: ``GET /`` (the self-contained page), ``GET /api/health`` (no auth, no secrets),
``GET /api/fleet`` (the doctor document, read-only), token-protected ``POST /api/shutdown``.
Requests whose ``Host`` header names anything but a loopback host are refused (DNS rebinding): a web
page elsewhere must not read the fleet through the user's browser.
"""

from __future__ import annotations

import logging
import sys
from http.server import ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from synclease.constants import LOOPBACK
from synclease.dashboard.page import CONTENT_SECURITY_POLICY, PAGE_BYTES
from synclease.httpserve import JsonHandler

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


class _Handler(JsonHandler):
    server: DashboardServer
    server_version = "synclease-dashboard"

    def _authorized(self) -> bool:
        return self._bearer_is(self.server.controller.token)

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
