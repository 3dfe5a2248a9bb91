"""``synclease sync push --type T [--data JSON]`` or ``synclease sync push -`` (NDJSON on stdin):
parse, then :func:`synclease.services.push.push`."""

from __future__ import annotations

import json
import sys
from typing import Any

from synclease.cli.output import emit_json, stdout_console
from synclease.core.errors import BadInputError
from synclease.core.events import parse_ndjson_events
from synclease.services import context
from synclease.services.context import actor
from synclease.services.push import push


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
    pushed = push(context.load(), events, actor("sync push"))
    if as_json:
        emit_json(pushed.to_json())
    else:
        daemon = pushed.daemon
        where = f"daemon pid {daemon.pid}" if daemon else "local-only (not logged in)"
        stdout_console.print(f"queued {len(pushed.ids)} event(s); queue depth {pushed.queue_depth}; {where}")
    return 0
