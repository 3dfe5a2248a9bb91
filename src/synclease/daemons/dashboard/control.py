"""The dashboard's control plane: its routes on the shared server base
(:mod:`synclease.adapters.http_server`).

``GET /api/health`` (no auth, no secrets). The page ``GET /`` and ``GET /api/fleet`` (the doctor
document, read-only) need the dashboard's token, Jupyter's way: the URL that ``synclease dashboard``
prints carries ``?token=…``; opening it sets an HttpOnly, SameSite=Strict cookie and redirects to the
bare page, whose script then reads ``/api/fleet`` with the cookie. ``?token=``, the cookie or
``Authorization: Bearer`` are accepted; anything else is 403. ``POST /api/shutdown`` needs the bearer
token. The server base refuses any ``Host`` but a loopback one (DNS rebinding).
"""

from __future__ import annotations

from typing import Any, Protocol

from synclease.adapters.http_server import ControlServer, Request, Response, Route, bearer, token_matches
from synclease.daemons.dashboard.page import CONTENT_SECURITY_POLICY, PAGE_BYTES


class DashboardController(Protocol):
    """What the routes need from the dashboard (:class:`synclease.daemons.dashboard.daemon.Dashboard`)."""

    token: str

    @property
    def port(self) -> int: ...

    def health(self) -> dict[str, Any]: ...
    def fleet(self) -> tuple[int, dict[str, Any]]: ...
    def request_shutdown(self) -> None: ...


def cookie_name(port: int) -> str:
    """Per port: cookies are per host, not per port, and two dashboards may share 127.0.0.1."""
    return f"synclease_dashboard_{port}"


def routes(controller: DashboardController) -> list[Route]:
    owner = bearer(lambda: controller.token)

    def viewer(request: Request) -> bool:
        presented = (
            request.query_value("token") or request.cookie(cookie_name(controller.port)) or request.bearer()
        )
        return token_matches(presented, controller.token)

    def page(request: Request) -> Response:
        if request.query_value("token") is not None:
            # Exchange the token in the URL for a cookie, and take it out of the address bar.
            cookie = f"{cookie_name(controller.port)}={controller.token}; HttpOnly; SameSite=Strict; Path=/"
            return Response(303, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie})
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
        Route("GET", "/", page, viewer),
        Route("GET", "/index.html", page, viewer),
        Route("GET", "/api/health", health),
        Route("GET", "/api/fleet", fleet, viewer),
        Route("POST", "/api/shutdown", shutdown, owner),
    ]


def dashboard_server(port: int, controller: DashboardController) -> ControlServer:
    return ControlServer(port, routes(controller), server_name="synclease-dashboard")
