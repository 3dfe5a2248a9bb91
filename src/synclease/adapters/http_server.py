"""The one HTTP server base of both control planes (sync daemon and dashboard), loopback only.

A daemon describes its routes (:class:`Route`); this module does everything else the same way for
both: the Host allow-list (DNS rebinding), the route and its authorization decided *before* any body
is read, ``Content-Length`` digits only and at most :data:`~synclease.core.constants.MAX_BODY_BYTES`
(else 400 or 413), the response headers, quiet logging, and binding the first free port of a range.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import io
import json
import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from synclease.adapters.http_listener import AcceptLoop, DeadlineReader
from synclease.core.constants import LOOPBACK, MAX_BODY_BYTES
from synclease.core.errors import SyncleaseError
from synclease.core.ports import port_order
from synclease.core.record import field, record

log = logging.getLogger("synclease.http")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
T = TypeVar("T")


@record
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes = b""

    def bearer(self) -> str | None:
        scheme, _, presented = self.headers.get("authorization", "").partition(" ")
        return presented if scheme == "Bearer" else None

    def cookie(self, name: str) -> str | None:
        for part in self.headers.get("cookie", "").split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == name:
                return value
        return None

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@record
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Runs once the response is on the wire (e.g. "now shut down").
    after: Callable[[], None] | None = None

    @classmethod
    def json(
        cls, status: int, document: Mapping[str, Any], after: Callable[[], None] | None = None
    ) -> Response:
        return cls(status, json.dumps(document, allow_nan=False).encode(), after=after)


Authorize = Callable[[Request], bool]


@record
class Route:
    method: str
    path: str
    handle: Callable[[Request], Response]
    #: Who may call it (checked before any body is read); None: anyone on loopback with a good Host.
    authorize: Authorize | None = None


def token_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented token with ours."""
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


def bearer(token: Callable[[], str]) -> Authorize:
    """Only ``Authorization: Bearer <token>``."""
    return lambda request: token_matches(request.bearer(), token())


def host_allowed(host: str | None, port: int | None = None) -> bool:
    """A missing Host (HTTP/1.0 clients) or a loopback host name, with no port or with ``port``."""
    if not host:
        return True
    name = host.strip().lower()
    given_port: str | None = None
    if name.startswith("["):
        close = name.find("]")
        if close < 0:
            return False
        name, rest = name[: close + 1], name[close + 1 :]
        given_port = rest[1:] if rest.startswith(":") else (None if not rest else "")
    elif ":" in name:
        name, given_port = name.rsplit(":", 1)
    if name not in LOOPBACK_HOSTS:
        return False
    return given_port is None or port is None or given_port == str(port)


class ControlServer(AcceptLoop):
    """A control plane: the bounded accept loop (:class:`~synclease.adapters.http_listener.AcceptLoop`;
    ``SO_REUSEADDR`` on Linux only, where it just lets a restarted daemon take back its port from
    TIME_WAIT leftovers) serving the daemon's routes through :class:`_Handler`."""

    def __init__(
        self,
        port: int,
        routes: Sequence[Route],
        server_name: str,
    ) -> None:
        self.routes = {(route.method, route.path): route for route in routes}
        self.known_paths = {route.path for route in routes}
        self.server_name = server_name
        super().__init__((LOOPBACK, port), self._handle)

    def _handle(self, conn: socket.socket, deadline: float) -> None:
        _Handler(conn, conn.getpeername(), self, deadline)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: ControlServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.0"
    sys_version = ""

    def __init__(self, conn: socket.socket, address: Any, server: ControlServer, deadline: float) -> None:
        self.deadline = deadline
        super().__init__(conn, address, server)  # type: ignore[arg-type]

    def setup(self) -> None:
        """Every read of the request (line, headers, body) is bounded by one deadline."""
        self.connection = self.request
        self.rfile = io.BufferedReader(DeadlineReader(self.connection, self.deadline))
        self.wfile = self.connection.makefile("wb")

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            self.wfile.flush()
        self.wfile.close()
        self.rfile.close()

    @property
    def server_version(self) -> str:  # type: ignore[override]
        return self.server.server_name

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", self.requestline)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _refuse(self, status: int, error: str) -> None:
        self.close_connection = True
        self._send(Response.json(status, {"error": error}))

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        if not host_allowed(headers.get("host"), self.server.port):
            self._refuse(403, "forbidden_host")
            return
        route = self.server.routes.get((method, url.path))
        if route is None:
            self._refuse(405 if url.path in self.server.known_paths else 404, "not_found")
            return
        request = Request(method, url.path, parse_qs(url.query), headers)
        if route.authorize is not None and not route.authorize(request):
            self._refuse(403, "forbidden")
            return
        raw_length = headers.get("content-length", "0").strip() or "0"
        if not raw_length.isdigit():
            self._refuse(400, "bad_content_length")
            return
        if int(raw_length) > MAX_BODY_BYTES:
            self._refuse(413, "body_too_large")
            return
        body = self.rfile.read(int(raw_length)) if int(raw_length) else b""
        try:
            response = route.handle(Request(method, url.path, request.query, headers, body))
        except Exception:  # a bug in one handler must not take the control plane down
            log.exception("control plane handler %s %s failed", method, url.path)
            response = Response.json(500, {"error": "internal_error"})
        self._send(response)
        if response.after is not None:
            response.after()

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)
        self.wfile.flush()


def bind_first_free(hint: int, ports: range, factory: Callable[[int], T]) -> T:
    """Bind the first free port of ``ports`` from ``hint`` (wrapping); none free is one clear error."""
    for port in port_order(hint, ports):
        try:
            return factory(port)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise
    raise SyncleaseError(
        f"no free loopback port in {ports.start}-{ports.stop - 1}",
        hint="run `synclease auth doctor` to see what holds the ports",
    )
