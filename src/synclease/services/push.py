"""Enqueue events durably whether or not a daemon runs; with a session, make sure one runs and wake it.

What ``sync push`` and the public :func:`synclease.enqueue` both do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from synclease.adapters import http_client
from synclease.adapters.queue import open_queue
from synclease.adapters.session_store import current_session
from synclease.core.actor import Actor
from synclease.core.constants import RETIRE_REQUEST_TIMEOUT_SECONDS
from synclease.core.record import record
from synclease.services.context import Context
from synclease.services.ensure import ensure
from synclease.services.reuse import EnsureResult


@record
class Pushed:
    """``ids`` of the queued events in order; ``daemon`` the one that will upload them, or None when
    there is no session (the events wait, local-only, for a login)."""

    ids: tuple[str, ...]
    queue_depth: int
    daemon: EnsureResult | None

    def to_json(self) -> dict[str, object]:
        daemon = self.daemon
        return {
            "enqueued": len(self.ids),
            "ids": list(self.ids),
            "queue_depth": self.queue_depth,
            "daemon": None
            if daemon is None
            else {"pid": daemon.pid, "port": daemon.port, "reused": daemon.reused},
        }


def push(ctx: Context, events: Sequence[tuple[str, Any]], by: Actor | None) -> Pushed:
    """Queue ``events`` (type, JSON data) in one transaction, all or none; then, logged in, ensure a
    daemon and ask it to upload now (``POST /api/kick``; a daemon that misses it uploads on its
    next round)."""
    session = current_session(ctx.root)
    with open_queue(ctx.root, session.auth_scope if session else None, ctx.clock) as queue:
        ids = tuple(queue.enqueue_many(events))
        depth = queue.depth()
    if session is None:
        return Pushed(ids, depth, None)
    result = ensure(ctx.root, ctx.version, ctx.settings.port_range, ctx.clock, by=by)
    lease = ctx.store.read(result.instance_id).lease
    if lease is not None:
        http_client.post(lease.port, "/api/kick", lease.token, RETIRE_REQUEST_TIMEOUT_SECONDS)
    return Pushed(ids, depth, result)
