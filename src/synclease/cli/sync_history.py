"""``synclease sync history [--json] [--limit N] [--instance ID]``: the fleet's ledger, newest first."""

from __future__ import annotations

from synclease.adapters.ledger_store import LedgerStore
from synclease.cli.output import emit_json, stdout_console
from synclease.core.errors import BadInputError
from synclease.core.ledger_codec import to_document
from synclease.core.ledger_queries import for_instance, recent
from synclease.services import context

MAX_LIMIT = 10_000


def run(as_json: bool, limit: int, instance: str | None) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise BadInputError(f"--limit {limit} is not in 1-{MAX_LIMIT}", hint="give e.g. --limit 50")
    ctx = context.load(create=False)
    read = LedgerStore(ctx.root).read()
    events = read.events if instance is None else tuple(for_instance(read.events, instance))
    shown = recent(events, limit)
    if as_json:
        emit_json(
            {
                "events": [to_document(e) for e in shown],
                "skipped_lines": read.skipped,
                "problems": [{"path": str(p.path), "reason": p.reason} for p in read.problems],
            }
        )
        return 0
    for event in shown:
        who = f" by {event.by.command} (pid {event.by.pid})" if event.by else ""
        reason = f" {event.reason.value}" if event.reason else ""
        where = f" pid {event.pid} port {event.port}" if event.pid else ""
        stdout_console.print(
            f"{event.at.isoformat(timespec='seconds')} {event.kind.value}{reason} "
            f"{event.instance_id or '-'}{where}{who}",
            markup=False,
        )
    if read.skipped or read.problems:
        stdout_console.print(
            f"({read.skipped} unreadable line(s) skipped; {len(read.problems)} file problem(s))"
        )
    if not shown:
        stdout_console.print("no events recorded yet")
    return 0
