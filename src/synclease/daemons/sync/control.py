"""The sync daemon's control plane: its routes on the shared server base
(:mod:`synclease.adapters.http_server`).

``GET /api/health`` (no auth, no secrets); ``POST /api/retire``, ``POST /api/shutdown`` and
``POST /api/kick`` (new events queued: look at the queue now) need ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

from typing import Any, Protocol

from synclease.adapters.http_server import ControlServer, Request, Response, Route, bearer


class Controller(Protocol):
    """What the routes need from the daemon (:class:`synclease.daemons.sync.daemon.SyncDaemon`)."""

    token: str

    def health(self) -> dict[str, Any]: ...
    def request_retire(self) -> bool: ...
    def request_shutdown(self) -> bool: ...
    def kick(self) -> None: ...


def routes(controller: Controller) -> list[Route]:
    owner = bearer(lambda: controller.token)

    def health(request: Request) -> Response:
        return Response.json(200, controller.health())

    def retire(request: Request) -> Response:
        accepted = controller.request_retire()
        return Response.json(202 if accepted else 503, {"accepted": accepted})

    def shutdown(request: Request) -> Response:
        accepted = controller.request_shutdown()
        return Response.json(202 if accepted else 503, {"accepted": accepted})

    def kick(request: Request) -> Response:
        controller.kick()
        return Response.json(202, {"accepted": True})

    return [
        Route("GET", "/api/health", health),
        Route("POST", "/api/retire", retire, owner),
        Route("POST", "/api/shutdown", shutdown, owner),
        Route("POST", "/api/kick", kick, owner),
    ]


def control_server(port: int, controller: Controller) -> ControlServer:
    """The control plane on ``127.0.0.1:port``."""
    return ControlServer(port, routes(controller), server_name="synclease")
