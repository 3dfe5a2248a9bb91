"""The control plane: a threaded loopback HTTP server, so a busy daemon still answers health.

Routes (all JSON): ``GET /api/health`` (no auth, no secrets); token-protected ``POST /api/retire``,
``POST /api/shutdown``, ``POST /api/kick`` (new events queued) and ``POST /api/work`` (a bounded
synthetic request used to exercise "work in flight").
"""

from __future__ import annotations

import logging
import math
from http.server import ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from synclease.constants import LOOPBACK
from synclease.httpserve import JsonHandler

log = logging.getLogger("synclease.daemon")
MAX_WORK_SECONDS = 30.0


class Controller(Protocol):
    """What the server needs from the daemon; implemented by the lifecycle in :mod:`.runner`."""

    token: str

    def health(self) -> dict[str, Any]: ...
    def request_retire(self) -> bool: ...
    def request_shutdown(self) -> bool: ...
    def kick(self) -> None: ...
    def run_work(self, seconds: float) -> None: ...


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, controller: Controller) -> None:
        self.controller = controller
        super().__init__((LOOPBACK, port), _Handler)


class _Handler(JsonHandler):
    server: ControlServer
    server_version = "synclease"

    def _authorized(self) -> bool:
        return self._bearer_is(self.server.controller.token)

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/api/health":
            self._send(200, self.server.controller.health())
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 65536))
        if url.path not in ("/api/retire", "/api/shutdown", "/api/kick", "/api/work"):
            self._send(404, {"error": "not_found"})
            return
        if not self._authorized():
            self._send(403, {"error": "forbidden"})
            return
        controller = self.server.controller
        if url.path == "/api/kick":
            controller.kick()
            self._send(202, {"accepted": True})
        elif url.path == "/api/work":
            seconds = _seconds(parse_qs(url.query).get("seconds", ["0"])[0])
            controller.run_work(seconds)
            self._send(200, {"done": True, "seconds": seconds})
        else:
            accepted = (
                controller.request_retire() if url.path == "/api/retire" else controller.request_shutdown()
            )
            self._send(202 if accepted else 503, {"accepted": accepted})


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        return 0.0
    return min(max(value, 0.0), MAX_WORK_SECONDS) if math.isfinite(value) else 0.0
