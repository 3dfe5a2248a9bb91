"""What a queue database holds, as the CLI and the doctor show it: dead letters, counts, per-database
facts, the doctor's ``queue`` section and its three findings. Pure records and JSON; no data, no token.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from synclease.core.record import as_json, record

#: Which queue a database is for the current login: the auth scope's, or the local-only one.
QueueKind = Literal["scope", "local"]
#: Characters of an event's stored JSON that human output may show.
PREVIEW_CHARS = 60
MOVE_ASIDE = "synclease sync move-aside"
#: A database another process held locked for the whole read: not a reason to move it.
TRANSIENT_PROBLEM = "busy"
DEAD_LETTER = "synclease sync dead-letter"
#: A daemon adopts the local queue into the login's when it starts: stop the running one, start anew.
RESTART = "synclease sync stop && synclease sync start"


@record
class DeadLetter:
    """A dead-lettered event without its data: ``data_bytes`` is its size, ``data_head`` at most
    :data:`PREVIEW_CHARS` + 1 characters of it (so a preview knows whether it was cut)."""

    id: str
    type: str
    created_at: str
    dead_lettered_at: str
    attempts: int
    rejections: int
    last_status: int | None
    reason: str
    data_bytes: int
    data_head: str

    def preview(self) -> str:
        head = "".join(c if c.isprintable() else "?" for c in self.data_head[:PREVIEW_CHARS])
        return head + "…" if len(self.data_head) > PREVIEW_CHARS else head

    def to_json(self, queue: QueueKind) -> dict[str, Any]:
        return {**as_json(self, omit=("data_head",)), "queue": queue}


@record
class QueueCounts:
    depth: int
    dead_letters: int


@record
class QueueFacts:
    """One queue database as read (read-only): its counts, or why it cannot be used."""

    path: Path
    queue: QueueKind
    counts: QueueCounts | None = None
    schema_version: int | None = None
    problem: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"path": str(self.path), "queue": self.queue}
        if self.counts is None:
            row.update(problem=self.problem or "unknown", detail=self.detail or None)
        else:
            row.update(
                schema_version=self.schema_version,
                depth=self.counts.depth,
                dead_letters=self.counts.dead_letters,
            )
        return row


def remediation(facts: QueueFacts) -> str:
    """One command that makes an unusable queue database usable again, never deleting anything: a mode
    fix where that is all that is wrong, else moving the database (and its -wal/-shm) aside."""
    path = shlex.quote(str(facts.path))
    if facts.problem == "insecure_mode":
        return f"chmod 600 -- {path}"
    if facts.problem == "unsafe_directory":
        return f"chmod 700 -- {shlex.quote(str(facts.path.parent))}"
    return f"{MOVE_ASIDE} {path}"


def queue_section(databases: Sequence[QueueFacts]) -> dict[str, Any]:
    """The doctor's ``queue`` object: totals over the usable databases, and each database."""
    usable = [d.counts for d in databases if d.counts is not None]
    return {
        "depth": sum(c.depth for c in usable),
        "dead_letters": sum(c.dead_letters for c in usable),
        "databases": [d.to_json() for d in databases],
    }


def queue_findings(
    databases: Sequence[QueueFacts], logged_in: bool = False
) -> list[tuple[str, str, str, str]]:
    """``(id, severity, summary, command)`` of the queue findings: ``queue_unusable`` per database that
    cannot be used (not one that was only busy: that passes), ``dead_letter`` when any event was
    dead-lettered, ``queue_not_adopted`` when, ``logged_in``, events pushed before the login still
    wait in the local queue (no daemon has started since, or its adoption failed: its log says why)."""
    out: list[tuple[str, str, str, str]] = []
    waiting = sum(d.counts.depth for d in databases if d.queue == "local" and d.counts is not None)
    if logged_in and waiting:
        out.append(
            (
                "queue_not_adopted",
                "warning",
                f"{waiting} event(s) pushed before login still wait in the local queue: a daemon moves "
                "them to this login's queue when it starts (a running one logged why it could not)",
                RESTART,
            )
        )
    for facts in databases:
        if facts.counts is None and facts.problem != TRANSIENT_PROBLEM:
            out.append(
                (
                    "queue_unusable",
                    "error",
                    f"the {facts.queue} queue database {facts.path.name} is not usable ({facts.problem}); "
                    "sync push and sync start fail until it is fixed",
                    remediation(facts),
                )
            )
    dead = sum(d.counts.dead_letters for d in databases if d.counts is not None)
    if dead:
        out.append(
            (
                "dead_letter",
                "warning",
                f"{dead} event(s) were dead-lettered: the server refused them permanently",
                DEAD_LETTER,
            )
        )
    return out
