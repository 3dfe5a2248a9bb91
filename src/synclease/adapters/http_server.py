"""The one HTTP server base of both control planes (sync daemon and dashboard), loopback only.

A daemon describes its routes (:class:`Route`); this module does everything else the same way for
both: the Host allow-list (DNS rebinding), the route and its authorization decided *before* any body
is read, ``Content-Length`` digits only and at most :data:`~synclease.core.constants.MAX_BODY_BYTES`
(else 400 or 413), the response headers, quiet logging, and binding the first free port of a range.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
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
    """Constant-time comparison of a presented token with ours. :mod:`hmac` is imported here, at the
    first request that presents one: it loads OpenSSL, ~3.5 MB an idle daemon would otherwise hold."""
    import hmac

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
    TIME_WAIT leftovers) serving the daemon's routes (:func:`read_head`, one request per connection)."""

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
        _serve(self, conn, deadline)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


#: A request line or header line longer than this is refused (414 / 431), as ``http.server`` does.
MAX_LINE_BYTES = 65536
MAX_HEADERS = 100
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class _Refused(Exception):
    """A request refused before its route runs: ``status`` and a short ``error`` for the JSON body."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status, self.error = status, error


def _line(rfile: io.BufferedIOBase, too_long: tuple[int, str]) -> bytes:
    line = rfile.readline(MAX_LINE_BYTES + 1)
    if len(line) > MAX_LINE_BYTES:
        raise _Refused(*too_long)
    return line


def read_head(rfile: io.BufferedIOBase) -> tuple[str, str, dict[str, str]] | None:
    """The request line and headers (names lower-cased, the last of a repeated name wins); None when
    the client sent nothing. A small HTTP/1.x reader instead of ``http.server``, whose imports
    (``email``, ``http.client``, ``socketserver``, ``mimetypes``) cost the daemon megabytes (ADR 0015)."""
    first = _line(rfile, (414, "request_line_too_long"))
    if not first.strip():
        return None
    words = first.decode("iso-8859-1").split()
    if len(words) != 3 or not words[2].startswith("HTTP/"):
        raise _Refused(400, "bad_request_line")
    headers: dict[str, str] = {}
    name = ""
    for _ in range(MAX_HEADERS + 1):
        raw = _line(rfile, (431, "header_line_too_long"))
        if raw in (b"\r\n", b"\n", b""):
            return words[0], words[1], headers
        text = raw.decode("iso-8859-1")
        if text[:1] in (" ", "\t") and name:  # a folded continuation of the previous header
            headers[name] = f"{headers[name]} {text.strip()}"
            continue
        key, sep, value = text.partition(":")
        if not sep or not key.strip():
            raise _Refused(400, "bad_header")
        name = key.strip().lower()
        headers[name] = value.strip()
    raise _Refused(431, "too_many_headers")


def _http_date(now: float) -> str:
    """RFC 9110's IMF-fixdate, without the locale (``strftime`` would translate the names)."""
    t = time.gmtime(now)
    clock = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} {clock} GMT"


def _send(conn: socket.socket, server_name: str, response: Response) -> None:
    try:
        phrase = HTTPStatus(response.status).phrase
    except ValueError:
        phrase = ""
    headers = {
        "Server": server_name,
        "Date": _http_date(time.time()),
        "Content-Type": response.content_type,
        "Content-Length": str(len(response.body)),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        **response.headers,
    }
    head = f"HTTP/1.0 {response.status} {phrase}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    conn.sendall(head.encode("latin-1") + b"\r\n" + response.body)


def _serve(server: ControlServer, conn: socket.socket, deadline: float) -> None:
    """One request on ``conn`` (HTTP/1.0: one request, then close), every read within ``deadline``."""
    with io.BufferedReader(DeadlineReader(conn, deadline)) as rfile:
        try:
            head = read_head(rfile)
            if head is None:
                return
            response = _respond(server, rfile, *head)
        except _Refused as refused:
            response = Response.json(refused.status, {"error": refused.error})
        _send(conn, server.server_name, response)
        if response.after is not None:
            response.after()


def _respond(
    server: ControlServer, rfile: io.BufferedIOBase, method: str, target: str, headers: dict[str, str]
) -> Response:
    log.debug("http %s %s", method, target[:200])
    if method not in ("GET", "POST"):
        raise _Refused(501, "unsupported_method")
    url = urlsplit(target)
    if not host_allowed(headers.get("host"), server.port):
        raise _Refused(403, "forbidden_host")
    route = server.routes.get((method, url.path))
    if route is None:
        raise _Refused(405 if url.path in server.known_paths else 404, "not_found")
    request = Request(method, url.path, parse_qs(url.query), headers)
    if route.authorize is not None and not route.authorize(request):
        raise _Refused(403, "forbidden")
    raw_length = headers.get("content-length", "0").strip() or "0"
    if not raw_length.isdigit():
        raise _Refused(400, "bad_content_length")
    if int(raw_length) > MAX_BODY_BYTES:
        raise _Refused(413, "body_too_large")
    body = rfile.read(int(raw_length)) if int(raw_length) else b""
    try:
        return route.handle(Request(method, url.path, request.query, headers, body))
    except Exception:  # a bug in one handler must not take the control plane down
        log.exception("control plane handler %s %s failed", method, url.path)
        return Response.json(500, {"error": "internal_error"})


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
