"""A loopback upstream for tests: records what ``POST /v1/events`` receives, and misbehaves on request.

    with Receiver() as rx:
        rx.answer(401)                # every request now gets 401 (None → back to 200)
        rx.require_token("t0k")       # 401 unless "Authorization: Bearer t0k" (None → any token)
        rx.reject_events(422, is_poison)  # a batch holding any event the predicate picks gets 422
        rx.reject_ids({"abc…"}, 400)  # ... or any of these event ids (reject_events(None) → off)
        rx.max_body = 4096            # 413 for a request body larger than this (None → no limit)
        rx.hold()                     # requests block until rx.release() (or stop)
        rx.delay = 0.2                # or: answer each request after a delay
        rx.stop(); rx.start()         # down and back up on the same port
        rx.wait_for(lambda: len(rx.accepted_ids) >= 10, timeout=10)

It binds ``127.0.0.1`` port 0: an ephemeral port from the kernel, asserted outside the reserved
synclease ranges (9237-9449). Only requests answered 2xx count as received (``accepted_*``); every
request is still logged in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RESERVED_PORTS = range(9237, 9450)
LOOPBACK = "127.0.0.1"

EventPredicate = Callable[[dict[str, Any]], bool]


def is_poison(event: dict[str, Any]) -> bool:
    """An event whose data is an object with ``"poison": true``."""
    data = event.get("data")
    return isinstance(data, dict) and data.get("poison") is True


@dataclass
class Request:
    path: str
    authorization: str | None
    status: int
    event_ids: list[str]
    events: list[dict[str, Any]] = field(repr=False)
    body_bytes: int = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: Receiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        rx = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        rx._arrived(self.path, body)
        rx._wait_gate()
        status, events = rx._decide(self.path, self.headers.get("Authorization"), body)
        payload = json.dumps({"accepted": len(events) if 200 <= status < 300 else 0}).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass


class Receiver:
    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.delay = 0.0
        self.max_body: int | None = None
        self._status: int | None = None
        self._reject: tuple[int, EventPredicate] | None = None
        self._required_authorization: str | None = None
        self._lock = threading.Condition()
        self._gate = threading.Event()
        self._gate.set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[Request] = []
        self.accepted_counts: Counter[str] = Counter()
        self.arrived = 0  # requests that reached the handler (before any hold/delay)
        self.arrivals: list[list[str]] = []  # event ids of each request as it arrived (before any hold)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Receiver:
        for _ in range(20):
            server = _Server((LOOPBACK, self.port), _Handler)
            port = server.server_address[1]
            if port not in RESERVED_PORTS:
                break
            server.server_close()  # the kernel gave us a reserved port: try again
        else:
            raise RuntimeError("could not get an ephemeral port outside the reserved ranges")
        server.receiver = self
        self.port = port
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering (connections are refused) — held requests are let go first."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self.release()
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    # --- behaviour ------------------------------------------------------------------------------

    def answer(self, status: int | None) -> None:
        """Answer every request with ``status`` (None → 200)."""
        with self._lock:
            self._status = status

    def require_token(self, token: str | None) -> None:
        """Answer 401 to any request whose bearer token is not ``token`` (None → accept any token)."""
        with self._lock:
            self._required_authorization = None if token is None else f"Bearer {token}"

    def reject_events(self, status: int | None, predicate: EventPredicate = is_poison) -> None:
        """Answer ``status`` to any batch holding an event ``predicate`` picks (None → accept all)."""
        with self._lock:
            self._reject = None if status is None else (status, predicate)

    def reject_ids(self, ids: set[str], status: int) -> None:
        """Answer ``status`` to any batch holding one of ``ids``."""
        chosen = set(ids)
        self.reject_events(status, lambda event: event.get("id") in chosen)

    def hold(self) -> None:
        """Block every request after it arrived, until :meth:`release`."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    # --- what happened --------------------------------------------------------------------------

    @property
    def accepted_ids(self) -> set[str]:
        with self._lock:
            return set(self.accepted_counts)

    @property
    def accepted_total(self) -> int:
        with self._lock:
            return sum(self.accepted_counts.values())

    def statuses(self) -> list[int]:
        with self._lock:
            return [r.status for r in self.requests]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
        """Wait until ``predicate()`` holds (re-checked on every request and at least every 50 ms)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 0.05))
        return True

    # --- handler side ---------------------------------------------------------------------------

    def _arrived(self, path: str, body: bytes = b"") -> None:
        try:
            ids = [str(e["id"]) for e in json.loads(body)["events"]]
        except (ValueError, KeyError, TypeError):
            ids = []
        with self._lock:
            self.arrived += 1
            self.arrivals.append(ids)
            self._lock.notify_all()

    def _wait_gate(self) -> None:
        while not self._gate.wait(0.05):
            if self._server is None:
                return
        if self.delay > 0:
            time.sleep(self.delay)  # simulates a slow upstream; not test synchronisation

    def _decide(self, path: str, authorization: str | None, body: bytes) -> tuple[int, list[dict[str, Any]]]:
        try:
            document = json.loads(body)
            events = list(document["events"])
            ids = [str(e["id"]) for e in events]
        except (ValueError, KeyError, TypeError):
            events, ids = [], []
            bad = True
        else:
            bad = False
        with self._lock:
            status = self._status or (400 if bad or path != "/v1/events" else self._judge(body, events))
            required = self._required_authorization
            if required is not None and authorization != required and 200 <= status < 300:
                status = 401
            self.requests.append(Request(path, authorization, status, ids, events, len(body)))
            if 200 <= status < 300:
                self.accepted_counts.update(ids)
            self._lock.notify_all()
        return status, events

    def _judge(self, body: bytes, events: list[dict[str, Any]]) -> int:
        if self.max_body is not None and len(body) > self.max_body:
            return 413
        if self._reject is not None:
            status, predicate = self._reject
            if any(isinstance(e, dict) and predicate(e) for e in events):
                return status
        return 200
