"""``synclease sync push --type T [--data JSON]`` or ``synclease sync push -`` (NDJSON on stdin).

Enqueues durably whether or not a daemon runs; with a session, makes sure one runs and wakes it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from synclease.adapters import http_client
from synclease.adapters.queue import open_queue
from synclease.adapters.session_store import current_session
from synclease.cli import context
from synclease.cli.context import actor
from synclease.cli.output import emit_json, stdout_console
from synclease.core.constants import RETIRE_REQUEST_TIMEOUT_SECONDS
from synclease.core.errors import BadInputError
from synclease.core.events import parse_ndjson_events
from synclease.services.ensure import ensure


def _events(source: str | None, event_type: str | None, data: str | None) -> list[tuple[str, Any]]:
    if source == "-":
        if event_type is not None or data is not None:
            raise BadInputError("give either `-` (NDJSON on stdin) or --type/--data, not both")
        return parse_ndjson_events(sys.stdin)
    if source is not None:
        raise BadInputError(f"unexpected argument {source!r}", hint="use `-` to read NDJSON from stdin")
    if event_type is None:
        raise BadInputError("no event given", hint="use --type T [--data JSON], or `-` for NDJSON on stdin")
    try:
        payload = json.loads(data) if data is not None else None
    except ValueError as exc:
        raise BadInputError(
            f"--data is not valid JSON ({exc.args[0]})", hint="quote the JSON for your shell"
        ) from None
    return [(event_type, payload)]


def run(source: str | None, event_type: str | None, data: str | None, as_json: bool) -> int:
    events = _events(source, event_type, data)
    ctx = context.load()
    session = current_session(ctx.root)
    with open_queue(ctx.root, session.auth_scope if session else None, ctx.clock) as queue:
        ids = queue.enqueue_many(events)
        depth = queue.depth()
    daemon: dict[str, Any] | None = None
    if session is not None:
        result = ensure(ctx.root, ctx.version, ctx.settings.port_range, ctx.clock, by=actor("sync push"))
        lease = ctx.store.read(result.instance_id).lease
        if lease is not None:
            http_client.post(lease.port, "/api/kick", lease.token, RETIRE_REQUEST_TIMEOUT_SECONDS)
        daemon = {"pid": result.pid, "port": result.port, "reused": result.reused}
    doc = {"enqueued": len(ids), "ids": ids, "queue_depth": depth, "daemon": daemon}
    if as_json:
        emit_json(doc)
    else:
        where = f"daemon pid {daemon['pid']}" if daemon else "local-only (not logged in)"
        stdout_console.print(f"queued {len(ids)} event(s); queue depth {depth}; {where}")
    return 0
