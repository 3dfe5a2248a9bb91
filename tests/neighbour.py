"""A neighbour listener for the boundary matrix, run as its own process:

    python tests/neighbour.py KIND PORT SIGNAL_LOG [HEALTH_JSON]

KIND is ``http`` (a third-party web server answering HTML), ``raw`` (a bare TCP listener) or
``impostor`` (answers ``GET /api/health`` with HEALTH_JSON, e.g. a dashboard- or sync-shaped report
on a port where the real daemon cannot bind). It binds 127.0.0.1:PORT, prints ``ready`` and serves
until SIGKILL. SIGTERM, SIGINT and SIGHUP are recorded in SIGNAL_LOG and otherwise ignored, so a
wrongful signal shows up as a line in the log rather than as a silent death.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def main() -> None:
    kind, port, signal_log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    health: dict[str, Any] = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    # Impostors claim their own pid and port, as a real daemon's self-report would.
    health = {
        k: os.getpid() if v == "SELF_PID" else port if v == "SELF_PORT" else v for k, v in health.items()
    }

    def record(signum: int, frame: object) -> None:
        with open(signal_log, "a") as handle:
            handle.write(f"{signal.Signals(signum).name}\n")

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, record)

    if kind == "raw":
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers only
        sock.bind(("127.0.0.1", port))
        sock.listen(64)

        def accept() -> None:
            while True:
                conn, _ = sock.accept()
                conn.close()

        threading.Thread(target=accept, daemon=True).start()
    else:

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                if kind == "impostor" and self.path == "/api/health":
                    body, ctype = json.dumps(health).encode(), "application/json"
                else:
                    body, ctype = b"<html><body>someone else's server</body></html>", "text/html"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
