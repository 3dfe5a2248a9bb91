"""``synclease sync dead-letter [--json] [--requeue]``: the events the server refused permanently.

Lists the dead letters of this login's queues (the auth scope's and the local-only one), newest
first: never their data (human output shows a short preview), never a token. ``--requeue`` moves them
all back into their queue with their rejection counts reset and wakes a running daemon. Exit 0.
"""

from __future__ import annotations

from typing import Any

from synclease.adapters.session_store import current_session
from synclease.cli.output import emit_json, stdout_console
from synclease.services import context, dead_letters
from synclease.services.dead_letters import DeadLetterReport


def to_json(report: DeadLetterReport) -> dict[str, Any]:
    woken = report.woken
    return {
        "dead_letters": [item.letter.to_json(item.queue) for item in report.letters],
        "total": report.total,
        "truncated": report.truncated,
        "requeued": report.requeued,
        "queues": [facts.to_json() for facts in report.queues],
        "daemon": None if woken is None else {"pid": woken.pid, "port": woken.port},
    }


def _plain(value: object) -> str:
    text = "" if value is None else str(value)
    return "".join(c if c.isprintable() else "?" for c in text)


def _render(report: DeadLetterReport, requeued: bool) -> None:
    con = stdout_console
    for facts in report.queues:
        if facts.counts is None:
            con.print(f"{facts.queue} queue {facts.path} is not usable ({facts.problem})", markup=False)
    if not report.letters:
        con.print("nothing to requeue: no dead letters" if requeued else "no dead letters")
        return
    shown = f" (the newest {len(report.letters)} shown)" if report.truncated else ""
    verb = "requeued" if requeued else "dead letter(s), newest first"
    lines = [f"{report.total} {verb}{shown}:"]
    for item in report.letters:
        d = item.letter
        lines += [
            f"  {d.id}  {_plain(d.type)}  dead-lettered {d.dead_lettered_at}",
            f"      {_plain(d.reason)}; created {d.created_at}, {d.attempts} attempt(s), "
            f"{d.rejections} refusal(s), {item.queue} queue",
            f"      data ({d.data_bytes} bytes): {_plain(d.preview())}",
        ]
    if not requeued:
        lines.append("once the server accepts them: synclease sync dead-letter --requeue")
    elif report.woken is not None:
        lines.append(f"woke the sync daemon (pid {report.woken.pid}) to upload them")
    else:
        lines.append("no sync daemon is running: `synclease sync start` uploads them")
    con.print("\n".join(lines), markup=False)


def run(as_json: bool, requeue: bool) -> int:
    ctx = context.load(create=False)
    session = current_session(ctx.root)
    if requeue:
        report = dead_letters.requeue(ctx.root, session, ctx.clock)
    else:
        report = dead_letters.list_dead_letters(ctx.root, session)
    if as_json:
        emit_json(to_json(report))
    else:
        _render(report, requeue)
    return 0
