"""The loopback HTTP client of the control planes: requests to ``127.0.0.1:port``, one hard deadline.

Hand-written on :mod:`socket` rather than :mod:`http.client` for reasons measured in ADR 0008 (its
import costs ~18 ms of every CLI start; its timeouts bound each socket operation, not the exchange,
so a listener that drips one byte at a time could hold a probe for as long as it likes) and ADR 0012
(the probe asks every port of a range at once, and threads cost it more than the exchanges did).

:func:`exchange` runs any number of requests at once on non-blocking sockets and one ``poll``: the
deadline covers connect, send and the whole response of all of them; :func:`request` is an exchange
of one. The request is HTTP/1.0 with ``Connection: close``; the response head and body are bounded.
Every failure is data (:class:`Reply` with an ``error`` tag), never an exception.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from collections.abc import Sequence
from typing import Any

from synclease.core.constants import LOOPBACK, MAX_BODY_BYTES
from synclease.core.http_wire import Call, Reply, ResponseReader, WireError, decoded, encode_request

__all__ = ["Call", "Reply", "connect", "exchange", "get_json", "post", "request"]

_CHUNK = 16 * 1024
_IN_PROGRESS = (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK)
_READ = select.POLLIN | select.POLLPRI
_WRITE = select.POLLOUT
_GONE = select.POLLERR | select.POLLHUP | select.POLLNVAL


def _tag(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connect_refused"
    if isinstance(exc, ConnectionError):
        return "connection_closed"
    return f"os_error:{type(exc).__name__}"


class _Exchange:
    """One call in flight: connect, then send, then read; ``reply`` is set once it is over."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.sock: socket.socket | None = None
        self.connecting = False
        self.out = memoryview(encode_request(call))
        self.reader = ResponseReader(call.max_bytes)
        self.reply: Reply | None = None

    def start(self) -> int:
        """Open and start connecting; the poll events to wait for (0: already over)."""
        try:
            # Not socket.create_connection: its getaddrinfo (and the idna codec it loads) costs ~2 ms
            # of a CLI start for an address that is always numeric.
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setblocking(False)
            code = self.sock.connect_ex((LOOPBACK, self.call.port))
        except OSError as exc:
            return self.fail(_tag(exc), connected=False)
        if code in _IN_PROGRESS:
            self.connecting = True
        elif code != 0:
            return self.fail(_tag(OSError(code, "connect")), connected=False)
        return _WRITE

    def step(self, events: int) -> int:
        """Advance on ``events``; the events to wait for next (0: over)."""
        assert self.sock is not None
        try:
            if self.connecting:
                code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    return self.fail(_tag(OSError(code, "connect")), connected=False)
                if events & _GONE and not events & _WRITE:
                    return self.fail("connection_closed", connected=False)
                self.connecting = False
            if self.out:
                sent = self.sock.send(self.out)
                self.out = self.out[sent:]
                return _WRITE if self.out else _READ
            if events & (_READ | _GONE):
                chunk = self.sock.recv(_CHUNK)
                done = self.reader.feed(chunk) if chunk else self.reader.eof()
                if done is not None:
                    return self.finish(decoded(*done))
            return _READ
        except (BlockingIOError, InterruptedError):
            return _WRITE if self.connecting or self.out else _READ
        except WireError as failed:
            return self.fail(failed.tag)
        except OSError as exc:
            return self.fail(_tag(exc))
        except Exception as exc:  # a bug in one exchange never takes the others down: it is data
            return self.fail(f"probe_error:{type(exc).__name__}")

    def fail(self, tag: str, *, connected: bool = True) -> int:
        return self.finish(Reply(None, error=tag, connected=connected))

    def finish(self, reply: Reply) -> int:
        self.reply = reply
        self.close()
        return 0

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class _Flights:
    """The calls still in flight, by descriptor, and the one ``poll`` they wait on."""

    def __init__(self) -> None:
        self.poller = select.poll()
        self.live: dict[int, _Exchange] = {}

    def watch(self, flight: _Exchange, events: int) -> None:
        if events and flight.sock is not None:
            self.live[flight.sock.fileno()] = flight
            self.poller.register(flight.sock, events)

    def step(self, fd: int, events: int) -> None:
        wanted = self.live[fd].step(events)
        if wanted:
            self.poller.modify(fd, wanted)
        else:
            self.poller.unregister(fd)
            del self.live[fd]

    def connecting(self) -> bool:
        return any(flight.connecting for flight in self.live.values())

    def expire_connects(self) -> None:
        for fd, flight in list(self.live.items()):
            if flight.connecting:
                self.poller.unregister(fd)
                del self.live[fd]
                flight.fail("timeout", connected=False)


def exchange(calls: Sequence[Call], timeout: float, *, connect_timeout: float | None = None) -> list[Reply]:
    """Every call at once, each reply in the order of ``calls``, all within ``timeout`` seconds; a
    connection not made within ``connect_timeout`` (if given) fails as ``timeout`` with
    ``connected`` False. Needs one descriptor per call and no more (``poll`` takes none)."""
    started = time.monotonic()
    deadline = started + timeout
    connect_by = deadline if connect_timeout is None else min(deadline, started + connect_timeout)
    flights = [_Exchange(call) for call in calls]
    waiting = _Flights()
    try:
        for flight in flights:
            waiting.watch(flight, flight.start())
        while waiting.live:
            now = time.monotonic()
            if now >= connect_by:
                waiting.expire_connects()
            if now >= deadline or not waiting.live:
                break
            wake = connect_by if waiting.connecting() else deadline
            for fd, events in waiting.poller.poll(max(0.0, min(wake, deadline) - now) * 1000):
                waiting.step(fd, events)
    finally:
        for flight in flights:
            if flight.reply is None:
                flight.fail("timeout", connected=not flight.connecting)
    return [flight.reply or Reply(None, error="timeout") for flight in flights]


def connect(port: int, timeout: float) -> socket.socket | None:
    """A blocking TCP connection to ``127.0.0.1:port`` within ``timeout``, or None."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((LOOPBACK, port))
    except OSError:
        sock.close()
        return None
    return sock


def request(
    port: int,
    method: str,
    path: str,
    *,
    timeout: float,
    token: str | None = None,
    body: Any = None,
    max_bytes: int = MAX_BODY_BYTES,
) -> Reply:
    """One request to ``127.0.0.1:port``, all of it within ``timeout`` seconds."""
    return exchange([Call(port, method, path, token, body, max_bytes)], timeout)[0]


def get_json(port: int, path: str, timeout: float) -> Reply:
    return request(port, "GET", path, timeout=timeout)


def post(port: int, path: str, token: str, timeout: float, body: Any = None) -> Reply:
    return request(port, "POST", path, timeout=timeout, token=token, body=body)
