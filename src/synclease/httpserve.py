"""The request-handler base both control planes share (sync daemon and dashboard): JSON replies with
safe headers, quiet logging, and a constant-time bearer-token check."""

from __future__ import annotations

import hmac
import json
import logging
from http.server import BaseHTTPRequestHandler
from typing import Any

log = logging.getLogger("synclease.http")


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
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
        self._send_bytes(status, json.dumps(body, allow_nan=False).encode(), "application/json")

    def _bearer_is(self, expected: str) -> bool:
        """The request carries ``Authorization: Bearer <expected>`` (compared in constant time)."""
        scheme, _, presented = self.headers.get("Authorization", "").partition(" ")
        return scheme == "Bearer" and hmac.compare_digest(presented.encode(), expected.encode())
