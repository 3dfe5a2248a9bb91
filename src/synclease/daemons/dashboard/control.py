"""The dashboard's control plane: its routes on the shared server base
(:mod:`synclease.adapters.http_server`).

``GET /`` (the self-contained page), ``GET /api/health`` (no auth, no secrets), ``GET /api/fleet`` (the
doctor document, read-only), token-protected ``POST /api/shutdown``. The server base refuses any
``Host`` but a loopback one (DNS rebinding): a web page elsewhere must not read the fleet through the
user's browser.
"""

from __future__ import annotations

from typing import Any, Protocol

from synclease.adapters.http_server import ControlServer, Request, Response, Route, token_matches
from synclease.daemons.dashboard.page import CONTENT_SECURITY_POLICY, PAGE_BYTES


class Controller(Protocol):
    """What the routes need from the dashboard (:class:`synclease.daemons.dashboard.daemon.Dashboard`)."""

    token: str

    def health(self) -> dict[str, Any]: ...
    def fleet(self) -> tuple[int, dict[str, Any]]: ...
    def request_shutdown(self) -> None: ...


def routes(controller: Controller) -> list[Route]:
    def page(request: Request) -> Response:
        return Response(
            200,
            PAGE_BYTES,
            "text/html; charset=utf-8",
            {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Frame-Options": "DENY"},
        )

    def health(request: Request) -> Response:
        return Response.json(200, controller.health())

    def fleet(request: Request) -> Response:
        status, document = controller.fleet()
        return Response.json(status, document)

    def shutdown(request: Request) -> Response:
        # Answer first, then ask the lifecycle to stop: the reply is on the wire before the port closes.
        return Response.json(202, {"accepted": True}, after=controller.request_shutdown)

    return [
        Route("GET", "/", page),
        Route("GET", "/index.html", page),
        Route("GET", "/api/health", health),
        Route("GET", "/api/fleet", fleet),
        Route("POST", "/api/shutdown", shutdown, private=True),
    ]


def dashboard_server(port: int, controller: Controller) -> ControlServer:
    return ControlServer(
        port,
        routes(controller),
        authorize=lambda request: token_matches(request.bearer(), controller.token),
        server_name="synclease-dashboard",
    )
