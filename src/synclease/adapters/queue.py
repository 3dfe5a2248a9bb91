"""The durable event queue: one SQLite database per auth scope in ``<root>/queue/``.

Decisions (see ``docs/adr/0004-durable-queue.md``):

* WAL journal with ``synchronous=FULL`` (:mod:`.sqlite_db`): a committed ``enqueue`` survives a process
  crash *and* a power loss, because ``sync push`` reports success to a person who then forgets the
  events. Batched writes (``enqueue_many``, one claim, one complete per batch) keep the fsync cost per
  transaction.
* At-least-once: a batch is *claimed* (``claimed_by``, ``claim_expires_at`` in wall-clock epoch seconds,
  comparable across processes) rather than removed; ``complete`` deletes only rows the caller still
  holds; a claim that lapses (its holder died) is claimable by anyone. Receivers dedupe by ``id``.

One :class:`EventQueue` holds one connection, shared by threads under a lock (the worker thread claims
while the health handler asks for ``depth``). Database trouble is :class:`QueueError`.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.fsio import ensure_private_dir
from synclease.adapters.root import DaemonRoot
from synclease.adapters.sqlite_db import BUSY_TIMEOUT_SECONDS, DatabaseError, PrivateDatabase
from synclease.core.clock import Clock, to_wire
from synclease.core.events import Event, validate_event

QUEUE_SCHEMA_VERSION = 1
#: Ids per ``IN (...)`` statement; well under SQLite's bound-parameter limit on every version.
_ID_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    claimed_by TEXT NULL,
    claim_expires_at REAL NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_claimed_by ON events (claimed_by);
"""

_CLAIMABLE_SQL = (
    "SELECT id, type, data, created_at, attempts FROM events "
    "WHERE claimed_by IS NULL OR claim_expires_at IS NULL OR claim_expires_at < ?"
)
_CLAIM_SQL = (
    "UPDATE events SET claimed_by = ?, claim_expires_at = ?, attempts = attempts + 1 WHERE id IN ({})"
)

#: The queue's database error (a :class:`~synclease.adapters.sqlite_db.DatabaseError`).
QueueError = DatabaseError


def scope_digest(auth_scope: str | None) -> str:
    """Short stable digest naming the queue of an auth scope (``None`` = the local-only queue)."""
    return hashlib.sha256((auth_scope or "local").encode()).hexdigest()[:16]


def queue_path(root: DaemonRoot, auth_scope: str | None) -> Path:
    return root.queue_dir / f"{scope_digest(auth_scope)}.sqlite3"


def open_queue(root: DaemonRoot, auth_scope: str | None, clock: Clock = SYSTEM_CLOCK) -> EventQueue:
    """Open (creating if needed) the queue of ``auth_scope`` in ``root``."""
    ensure_private_dir(root.queue_dir)
    return EventQueue(queue_path(root, auth_scope), clock)


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), _ID_CHUNK):
        yield ids[start : start + _ID_CHUNK]


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


class EventQueue(PrivateDatabase):
    """A durable FIFO of events in one SQLite file (created 0600). Safe across threads and processes."""

    what = "event queue"

    def __init__(
        self, path: Path, clock: Clock = SYSTEM_CLOCK, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS
    ) -> None:
        super().__init__(path, _SCHEMA, QUEUE_SCHEMA_VERSION, clock, busy_timeout=busy_timeout)

    def _now_epoch(self) -> float:
        return self._clock.now().timestamp()

    def enqueue(self, event_type: str, data: Any) -> str:
        """Append one event; return its id (uuid4 hex)."""
        return self.enqueue_many([(event_type, data)])[0]

    def enqueue_many(self, events: Sequence[tuple[str, Any]]) -> list[str]:
        """Append events in one transaction (all or none); return their ids in order."""
        checked = [validate_event(event_type, data) for event_type, data in events]
        if not checked:
            return []
        created_at = to_wire(self._clock.now())
        rows = [(uuid.uuid4().hex, event_type, data_json, created_at) for event_type, data_json in checked]

        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO events (id, type, data, created_at, attempts) VALUES (?, ?, ?, ?, 0)", rows
            )

        self.write(insert)
        return [row[0] for row in rows]

    def depth(self) -> int:
        """Events not yet delivered (claimed or not)."""
        return self.read(lambda conn: int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]))

    def claim_batch(self, instance_id: str, limit: int, claim_seconds: float) -> list[Event]:
        """Atomically claim up to ``limit`` oldest events that are unclaimed or whose claim has lapsed."""
        if not instance_id:
            raise ValueError("instance_id must not be empty")
        if limit < 1 or not claim_seconds > 0:
            raise ValueError("limit must be >= 1 and claim_seconds > 0")

        # Cheap look first, without the write lock: an idle poller must not contend with pushers.
        def any_claimable(conn: sqlite3.Connection) -> bool:
            return conn.execute(_CLAIMABLE_SQL + " LIMIT 1", (self._now_epoch(),)).fetchone() is not None

        if not self.read(any_claimable):
            return []

        def claim(conn: sqlite3.Connection) -> list[Event]:
            now = self._now_epoch()
            rows = conn.execute(_CLAIMABLE_SQL + " ORDER BY rowid LIMIT ?", (now, limit)).fetchall()
            ids = [row[0] for row in rows]
            for chunk in _chunks(ids):
                sql = _CLAIM_SQL.format(_placeholders(len(chunk)))  # "?" placeholders only
                conn.execute(sql, (instance_id, now + claim_seconds, *chunk))
            return [Event(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]) + 1) for r in rows]

        return self.write(claim)

    def _update_claimed(self, sql: str, instance_id: str, ids: Sequence[str]) -> int:
        def update(conn: sqlite3.Connection) -> int:
            changed = 0
            for chunk in _chunks(list(ids)):
                # Only "?" placeholders are formatted in; ids and the instance id are bound parameters.
                cursor = conn.execute(sql.format(_placeholders(len(chunk))), (*chunk, instance_id))
                changed += cursor.rowcount
            return changed

        return self.write(update) if ids else 0

    def complete(self, instance_id: str, ids: Sequence[str]) -> int:
        """Delete delivered events, but only those still claimed by ``instance_id``; return how many."""
        return self._update_claimed(
            "DELETE FROM events WHERE id IN ({}) AND claimed_by = ?", instance_id, ids
        )

    def release(self, instance_id: str, ids: Sequence[str]) -> int:
        """Give back claimed events (still claimed by ``instance_id``) for anyone to claim now."""
        return self._update_claimed(
            "UPDATE events SET claimed_by = NULL, claim_expires_at = NULL "
            "WHERE id IN ({}) AND claimed_by = ?",
            instance_id,
            ids,
        )

    def adopt_from(self, other: EventQueue, batch: int = 500) -> int:
        """Move every claimable event of ``other`` (e.g. the local-only queue after a login) into this
        queue, keeping ids and ``created_at``. Safe to repeat or to crash in: rows are inserted here
        (ignoring ids already present) before they are deleted there. Returns how many were moved."""
        mover = f"adopt-{uuid.uuid4().hex}"
        moved = 0
        while True:
            events = other.claim_batch(mover, batch, BUSY_TIMEOUT_SECONDS * 2)
            if not events:
                return moved
            rows = [(e.id, e.type, e.data_json, e.created_at) for e in events]

            def insert(conn: sqlite3.Connection, rows: list[tuple[str, str, str, str]] = rows) -> None:
                conn.executemany(
                    "INSERT OR IGNORE INTO events (id, type, data, created_at, attempts) "
                    "VALUES (?, ?, ?, ?, 0)",
                    rows,
                )

            self.write(insert)
            moved += other.complete(mover, [e.id for e in events])

    def __enter__(self) -> EventQueue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
