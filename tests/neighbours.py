"""Every test neighbour in one module: the listeners that are *not* ours (or only pretend to be).

In-process (for unit tests of the probe and the clients):

* :class:`ReplyServer` — an HTTP server whose ``/api/health`` reply a test sets (status, type, body);
* :class:`RawResponder` — answers every connection with fixed raw bytes (hostile or broken HTTP);
* :func:`silent_listener` — a socket that listens and never accepts (the kernel completes handshakes);
* :func:`blocked_ports` — every port of a range held by bare listeners.

As their own processes, for live tests (``python tests/neighbours.py KIND PORT SIGNAL_LOG [BODY [CTYPE]]``):

* ``http`` — a third-party web server answering HTML; ``json`` — answers every GET with BODY (CTYPE);
* ``impostor`` — answers ``GET /api/health`` with the JSON in BODY (``SELF_PID``/``SELF_PORT`` filled in);
* ``raw`` — accepts and closes; ``silent`` — listens and never accepts;
* ``drip`` — answers any request with a valid-looking HTTP head, one byte every 0.4 s, forever.

Each process binds 127.0.0.1:PORT, prints ``ready`` and serves until it is signalled. SIGTERM, SIGINT
and SIGHUP are recorded in SIGNAL_LOG; with ``--ignore-signals`` they are otherwise ignored (so a
wrongful signal shows up as a line in the log rather than as a silent death), else they end it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SCRIPT = str(Path(__file__).resolve())
LOOPBACK = "127.0.0.1"


# --- in-process -----------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    content_type: str = "application/json"
    body: bytes = b"{}"


class _ReplyHandler(BaseHTTPRequestHandler):
    server: ReplyServer

    def do_GET(self) -> None:
        reply = self.server.reply if self.path == "/api/health" else Reply(404, "text/html", b"<h1>no</h1>")
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ReplyServer(ThreadingHTTPServer):
    """A threaded loopback server whose ``/api/health`` reply each test sets (``answer``)."""

    daemon_threads = True

    def __init__(self, port: int, reply: Reply | None = None) -> None:
        self.reply = reply or Reply()
        super().__init__((LOOPBACK, port), _ReplyHandler)
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def answer(
        self, body: bytes | dict[str, Any], status: int = 200, content_type: str = "application/json"
    ) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.reply = Reply(status, content_type, data)

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class RawResponder:
    """Answers every connection with a fixed raw response, after reading what the client sent."""

    def __init__(self, response: bytes, port: int = 0) -> None:
        self.response = response
        self.sock = socket.create_server((LOOPBACK, port))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    conn.sendall(self.response)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawResponder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _bound(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers only
    sock.bind((LOOPBACK, port))
    sock.listen(64)
    return sock


def silent_listener(port: int) -> socket.socket:
    """Listens on ``port`` and never accepts: nobody ever answers (close it when done)."""
    return _bound(port)


@contextlib.contextmanager
def blocked_ports(ports: range) -> Iterator[None]:
    """Every port of ``ports`` held by a bare listener for the block."""
    socks: list[socket.socket] = []
    try:
        socks.extend(_bound(port) for port in ports)
        yield
    finally:
        for sock in socks:
            sock.close()


# --- as a process ---------------------------------------------------------------------------------


def argv(
    kind: str, port: int, signal_log: Path, body: Any = None, ctype: str = "", *, ignore: bool = False
) -> list[str]:
    """The command line of a neighbour process (for ``Sandbox.popen``)."""
    args = [sys.executable, SCRIPT, kind, str(port), str(signal_log)]
    if body is not None:
        args.append(body if isinstance(body, str) else json.dumps(body))
        if ctype:
            args.append(ctype)
    return [*args, "--ignore-signals"] if ignore else args


def _serve_http(kind: str, port: int, body: str, ctype: str) -> None:
    health: dict[str, Any] = json.loads(body) if kind == "impostor" else {}
    # Impostors claim their own pid and port, as a real daemon's self-report would.
    health = {
        k: os.getpid() if v == "SELF_PID" else port if v == "SELF_PORT" else v for k, v in health.items()
    }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            if kind == "impostor" and self.path == "/api/health":
                data, content_type = json.dumps(health).encode(), "application/json"
            elif kind == "json":
                data, content_type = body.encode(), ctype or "application/json"
            else:
                data, content_type = b"<html><body>someone else's server</body></html>", "text/html"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer((LOOPBACK, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--ignore-signals"]
    ignore = "--ignore-signals" in sys.argv
    kind, port, signal_log = args[0], int(args[1]), args[2]
    body = args[3] if len(args) > 3 else "{}"
    ctype = args[4] if len(args) > 4 else ""

    def record(signum: int, frame: object) -> None:
        with open(signal_log, "a") as handle:
            handle.write(f"{signal.Signals(signum).name}\n")
        if not ignore:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, record)

    if kind == "drip":
        sock = _bound(port)

        def drip(conn: socket.socket) -> None:
            with contextlib.suppress(OSError), conn:
                conn.recv(65536)
                for byte in b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n" + b"X: " + b"y" * 10_000:
                    conn.sendall(bytes([byte]))
                    time.sleep(0.4)  # the neighbour's behaviour, not a test's synchronisation

        def serve() -> None:
            while True:
                conn, _ = sock.accept()
                threading.Thread(target=drip, args=(conn,), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
    elif kind in ("raw", "silent"):
        sock = _bound(port)
        if kind == "raw":

            def accept() -> None:
                while True:
                    conn, _ = sock.accept()
                    conn.close()

            threading.Thread(target=accept, daemon=True).start()
    else:
        _serve_http(kind, port, body, ctype)
    print("ready", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
