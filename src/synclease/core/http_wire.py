"""The loopback control planes' HTTP, as bytes: the request we send and the response we take.

Pure: :func:`encode_request` makes a request's bytes, :class:`ResponseReader` takes a response as it
arrives and says when it is complete, :func:`decoded` turns its body into a :class:`Reply`. A response
we do not take raises :class:`WireError` with a short tag. The sockets are
:mod:`synclease.adapters.http_client`'s.
"""

from __future__ import annotations

import json
from typing import Any

from synclease.core.codec import CodecError, parse_json
from synclease.core.constants import LOOPBACK, MAX_BODY_BYTES
from synclease.core.record import field, record

MAX_HEAD_BYTES = 16 * 1024


@record
class Call:
    """One request: ``method path`` to ``127.0.0.1:port``; ``token`` goes in a header (never the
    URL), ``body`` as JSON; a response body past ``max_bytes`` is ``too_large``."""

    port: int
    method: str = "GET"
    path: str = "/"
    token: str | None = field(default=None, repr=False)
    body: Any = None
    max_bytes: int = MAX_BODY_BYTES


@record
class Reply:
    """``status`` None when no HTTP answer came; ``error`` a short tag (``timeout``, ``connect_refused``,
    ``connection_closed``, ``empty_reply``, ``too_large``, ``bad_http``, ``not_json``,
    ``os_error:<name>``); ``connected`` False when no TCP connection was made at all."""

    status: int | None
    document: Any = None
    error: str | None = None
    connected: bool = True

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and self.error is None


class WireError(Exception):
    """The response is not one we take; ``tag`` says why (``bad_http``, ``too_large``, ...)."""

    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.tag = tag


def encode_request(call: Call) -> bytes:
    """The request bytes of ``call``: HTTP/1.0, ``Connection: close``, the token in a header."""
    method, path, port, token, body = call.method, call.path, call.port, call.token, call.body
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


def split_head(data: bytes) -> tuple[int, dict[str, str], bytes] | None:
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
        raise WireError("bad_http")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers, data[end + sep :]


def content_length(headers: dict[str, str], max_bytes: int) -> int | None:
    raw = headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit():
        raise WireError("bad_http")
    length = int(raw)
    if length > max_bytes:
        raise WireError("too_large")
    return length


class ResponseReader:
    """The response as it arrives: complete once the head is in and the body has its
    ``Content-Length`` (or, without one, when the peer closes)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.data = b""
        self.head: tuple[int, dict[str, str], bytes] | None = None
        self.length: int | None = None

    def feed(self, chunk: bytes) -> tuple[int, bytes] | None:
        if self.head is None:
            self.data += chunk
            self.head = split_head(self.data)
            if self.head is None:
                if len(self.data) > MAX_HEAD_BYTES:
                    raise WireError("bad_http")
                return None
            self.length = content_length(self.head[1], self.max_bytes)
        else:
            self.head = (self.head[0], self.head[1], self.head[2] + chunk)
        status, _headers, body = self.head
        if len(body) > self.max_bytes:
            raise WireError("too_large")
        if self.length is not None and len(body) >= self.length:
            return status, body[: self.length]
        return None

    def eof(self) -> tuple[int, bytes]:
        if self.head is None:
            raise WireError("connection_closed" if self.data else "empty_reply")
        if self.length is not None:
            raise WireError("connection_closed")  # shorter than it said
        return self.head[0], self.head[2]


def decoded(status: int, raw: bytes) -> Reply:
    """A complete body as a :class:`Reply`: empty, a JSON document, or ``not_json``."""
    if not raw.strip():
        return Reply(status)
    try:
        return Reply(status, parse_json(raw.decode("utf-8")))
    except (UnicodeDecodeError, CodecError):
        return Reply(status, error="not_json")
