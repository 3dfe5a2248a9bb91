"""The loopback HTTP client of the control planes: one request to ``127.0.0.1:port``, one hard deadline.

Hand-written on :mod:`socket` rather than :mod:`http.client` for two reasons measured in ADR 0008:
importing ``http.client`` (and the ``email`` package it pulls in) costs ~18 ms of every CLI start, and
its timeouts bound each socket operation, not the whole exchange, so a listener that drips one byte
at a time could hold a probe for as long as it likes. Here the deadline covers connect, send and the
whole response; the request is HTTP/1.0 with ``Connection: close``; the response head and body are
bounded. Every failure is data (:class:`Reply` with an ``error`` tag), never an exception.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from synclease.core.codec import CodecError, parse_json
from synclease.core.constants import LOOPBACK, MAX_BODY_BYTES
from synclease.core.record import record

MAX_HEAD_BYTES = 16 * 1024
_CHUNK = 16 * 1024


@record
class Reply:
    """``status`` None when no HTTP answer came; ``error`` a short tag (``timeout``, ``connect_refused``,
    ``connection_closed``, ``too_large``, ``bad_http``, ``not_json``, ``os_error:<name>``)."""

    status: int | None
    document: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and self.error is None


class _Failed(Exception):
    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.tag = tag


def _tag(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connect_refused"
    if isinstance(exc, ConnectionError):
        return "connection_closed"
    return f"os_error:{type(exc).__name__}"


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Failed("timeout")
    return left


def _encode_request(method: str, path: str, port: int, token: str | None, body: Any) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.0",
        f"Host: {LOOPBACK}:{port}",
        "Accept: application/json",
        "Connection: close",
    ]
    payload = b""
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        payload = json.dumps(body, allow_nan=False).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    elif method == "POST":
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def _split_head(data: bytes) -> tuple[int, dict[str, str], bytes] | None:
    """``(status, headers, body so far)`` once the head is complete, else None."""
    end = data.find(b"\r\n\r\n")
    sep = 4
    if end < 0:
        end, sep = data.find(b"\n\n"), 2
    if end < 0:
        return None
    lines = data[:end].decode("latin-1").splitlines()
    parts = lines[0].split(None, 2) if lines else []
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit() or len(parts[1]) != 3:
        raise _Failed("bad_http")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers, data[end + sep :]


def _content_length(headers: dict[str, str], max_bytes: int) -> int | None:
    raw = headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit():
        raise _Failed("bad_http")
    length = int(raw)
    if length > max_bytes:
        raise _Failed("too_large")
    return length


def _read_response(sock: socket.socket, deadline: float, max_bytes: int) -> tuple[int, bytes]:
    data = b""
    head: tuple[int, dict[str, str], bytes] | None = None
    length: int | None = None
    while True:
        if head is None:
            head = _split_head(data)
            if head is None and len(data) > MAX_HEAD_BYTES:
                raise _Failed("bad_http")
            if head is not None:
                length = _content_length(head[1], max_bytes)
        if head is not None:
            body = head[2]
            if len(body) > max_bytes:
                raise _Failed("too_large")
            if length is not None and len(body) >= length:
                return head[0], body[:length]
        sock.settimeout(_remaining(deadline))
        chunk = sock.recv(_CHUNK)
        if not chunk:
            if head is None:
                raise _Failed("connection_closed" if data else "empty_reply")
            if length is not None:
                raise _Failed("connection_closed")  # shorter than it said
            return head[0], head[2]
        if head is None:
            data += chunk
        else:
            head = (head[0], head[1], head[2] + chunk)


def _open(port: int, timeout: float) -> socket.socket:
    """A TCP connection to ``127.0.0.1:port``. Not :func:`socket.create_connection`: its
    ``getaddrinfo`` (and the ``idna`` codec it loads) costs ~2 ms of a CLI start for an address that
    is always numeric; ``connect`` parses that itself."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((LOOPBACK, port))
    except BaseException:
        sock.close()
        raise
    return sock


def connect(port: int, timeout: float) -> socket.socket | None:
    """A TCP connection to ``127.0.0.1:port`` within ``timeout``, or None."""
    try:
        return _open(port, timeout)
    except OSError:
        return None


def request(
    port: int,
    method: str,
    path: str,
    *,
    timeout: float,
    token: str | None = None,
    body: Any = None,
    sock: socket.socket | None = None,
    max_bytes: int = MAX_BODY_BYTES,
) -> Reply:
    """One request to ``127.0.0.1:port``, all of it within ``timeout`` seconds. The token goes in a
    header, never in the URL. ``sock``, if given, is an open connection to use (and close)."""
    deadline = time.monotonic() + timeout
    try:
        if sock is None:
            sock = _open(port, _remaining(deadline))
        sock.settimeout(_remaining(deadline))
        sock.sendall(_encode_request(method, path, port, token, body))
        status, raw = _read_response(sock, deadline, max_bytes)
    except _Failed as failed:
        return Reply(None, error=failed.tag)
    except OSError as exc:
        return Reply(None, error=_tag(exc))
    finally:
        if sock is not None:
            sock.close()
    if not raw.strip():
        return Reply(status)
    try:
        return Reply(status, parse_json(raw.decode("utf-8")))
    except (UnicodeDecodeError, CodecError):
        return Reply(status, error="not_json")


def get_json(port: int, path: str, timeout: float) -> Reply:
    return request(port, "GET", path, timeout=timeout)


def post(port: int, path: str, token: str, timeout: float, body: Any = None) -> Reply:
    return request(port, "POST", path, timeout=timeout, token=token, body=body)
