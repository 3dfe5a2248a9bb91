"""The sync daemon's control plane: its routes on the shared server base
(:mod:`synclease.adapters.http_server`).

``GET /api/health`` (no auth, no secrets); ``POST /api/retire``, ``POST /api/shutdown`` and
``POST /api/kick`` (new events queued: look at the queue now) need ``Authorization: Bearer <token>``.
A retire request may say why and who asks (``{"reason", "by"}``), for the daemon's ledger event.
"""

from __future__ import annotations

from typing import Any, Protocol

from synclease.adapters.http_server import ControlServer, Request, Response, Route, bearer
from synclease.core.actor import Actor
from synclease.core.codec import MAX_PID, CodecError, Lenient, parse_json
from synclease.core.reasons import LedgerReason


class SyncController(Protocol):
    """What the routes need from the daemon (:class:`synclease.daemons.sync.daemon.SyncDaemon`)."""

    token: str

    def health(self) -> dict[str, Any]: ...
    def request_retire(self, reason: str | None = None, by: Actor | None = None) -> bool: ...
    def request_shutdown(self) -> bool: ...
    def kick(self) -> None: ...


def retire_request(body: bytes) -> tuple[str | None, Actor | None]:
    """``{"reason": ..., "by": {"pid", "command"}}`` from a retire request, read leniently: a reason
    outside the ledger's closed set, or a malformed ``by``, is simply not used."""
    try:
        doc = parse_json(body.decode("utf-8")) if body.strip() else {}
    except (UnicodeDecodeError, CodecError):
        return None, None
    fields = Lenient(doc if isinstance(doc, dict) else {})
    reason = fields.text("reason", 32)
    by_fields = fields.section("by")
    pid, command = by_fields.integer("pid", 1, MAX_PID), by_fields.text("command", 48)
    try:
        by = Actor(pid, command) if pid is not None and command is not None else None
    except ValueError:
        by = None
    return (reason if reason in {r.value for r in LedgerReason} else None), by


def routes(controller: SyncController) -> list[Route]:
    owner = bearer(lambda: controller.token)

    def health(request: Request) -> Response:
        return Response.json(200, controller.health())

    def retire(request: Request) -> Response:
        reason, by = retire_request(request.body)
        accepted = controller.request_retire(reason, by)
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


def control_server(port: int, controller: SyncController) -> ControlServer:
    """The control plane on ``127.0.0.1:port``."""
    return ControlServer(port, routes(controller), server_name="synclease")
