"""The durable event queue: one SQLite database per auth scope in ``<root>/queue/``.

Decisions (see ``docs/adr/0004-durable-queue.md``):

* WAL journal with ``synchronous=FULL`` (:mod:`.sqlite_db`): a committed ``enqueue`` survives a process
  crash *and* a power loss, because ``sync push`` reports success to a person who then forgets the
  events. Batched writes (``enqueue_many``, one claim, one complete per batch) keep the fsync cost per
  transaction.
* At-least-once: a batch is *claimed* (``claimed_by``, ``claim_expires_at`` in wall-clock epoch seconds,
  comparable across processes) rather than removed; ``complete`` deletes only rows the caller still
  holds; a claim that lapses (its holder died) is claimable by anyone. Receivers dedupe by ``id``.
* Claims are bounded by count and by encoded bytes (:func:`synclease.core.delivery.fit_count`).
* Poison events (ADR 0010): a permanent refusal of one event alone is counted in its row
  (``record_rejection``); the last one moves the row to ``dead_letters`` in one transaction
  (``dead_letter``). A row leaves ``events`` only after a 2xx (``complete``), into ``dead_letters``, or
  into another queue (``adopt_from``); ``requeue_dead_letters`` moves dead letters back.

One :class:`EventQueue` holds one connection, shared by threads under a lock (the worker thread claims
while the health handler asks for ``depth``). Database trouble is :class:`QueueError`.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.fsio import ensure_private_dir
from synclease.adapters.queue_schema import (
    BASE_SCHEMA,
    MIGRATIONS,
    QUEUE_SCHEMA_VERSION,
    read_counts,
    read_dead_letters,
)
from synclease.adapters.root import DaemonRoot
from synclease.adapters.sqlite_db import BUSY_TIMEOUT_SECONDS, DatabaseError, PrivateDatabase
from synclease.core.clock import Clock, to_wire
from synclease.core.delivery import MAX_BATCH_BYTES, MAX_REASON_CHARS, fit_count
from synclease.core.events import Event, event_wire_bytes, validate_event
from synclease.core.queue_state import DeadLetter, QueueCounts

__all__ = ["QUEUE_SCHEMA_VERSION", "EventQueue", "QueueError", "open_queue", "queue_path", "scope_digest"]

#: Ids per ``IN (...)`` statement; well under SQLite's bound-parameter limit on every version.
_ID_CHUNK = 500

#: Unclaimed, or claimed with no expiry, or whose claim lapsed before ``?`` (now).
_ANY_CLAIMABLE_SQL = (
    "SELECT 1 FROM events "
    "WHERE claimed_by IS NULL OR claim_expires_at IS NULL OR claim_expires_at < ? LIMIT 1"
)
_CLAIMABLE_SIZES_SQL = (
    "SELECT id, type, created_at, length(CAST(data AS BLOB)) FROM events "
    "WHERE claimed_by IS NULL OR claim_expires_at IS NULL OR claim_expires_at < ? ORDER BY rowid LIMIT ?"
)
_CLAIMED_SQL = "SELECT id, type, data, created_at, attempts, rejections FROM events WHERE id IN ({})"
_CLAIM_SQL = (
    "UPDATE events SET claimed_by = ?, claim_expires_at = ?, attempts = attempts + 1 WHERE id IN ({})"
)
_DEAD_LETTER_SQL = (
    "INSERT OR REPLACE INTO dead_letters (id, type, data, created_at, attempts, rejections, last_status, "
    "reason, dead_lettered_at) SELECT id, type, data, created_at, attempts, rejections + 1, ?, ?, ? "
    "FROM events WHERE id = ? AND claimed_by = ?"
)

#: The queue's database error (a :class:`~synclease.adapters.sqlite_db.DatabaseError`).
QueueError = DatabaseError


def scope_digest(auth_scope: str | None) -> str:
    """Short stable digest naming the queue of an auth scope (``None`` = the local-only queue)."""
    return hashlib.sha256((auth_scope or "local").encode()).hexdigest()[:16]


def _new_id() -> str:
    """A fresh uuid4 in hex. :mod:`uuid` is imported here: it imports :mod:`platform`, which a daemon
    that never enqueues (an idle one) would otherwise hold."""
    import uuid

    return uuid.uuid4().hex


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
        super().__init__(
            path, BASE_SCHEMA, QUEUE_SCHEMA_VERSION, clock, busy_timeout=busy_timeout, migrations=MIGRATIONS
        )

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
        rows = [(_new_id(), event_type, data_json, created_at) for event_type, data_json in checked]

        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO events (id, type, data, created_at, attempts) VALUES (?, ?, ?, ?, 0)", rows
            )

        self.write(insert)
        return [row[0] for row in rows]

    def depth(self) -> int:
        """Events not yet delivered (claimed or not)."""
        return self.read(lambda conn: int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]))

    def counts(self) -> QueueCounts:
        """Events not yet delivered, and events dead-lettered, in one read."""
        return self.read(read_counts)

    def claim_batch(
        self, instance_id: str, limit: int, claim_seconds: float, max_bytes: int = MAX_BATCH_BYTES
    ) -> list[Event]:
        """Atomically claim the oldest events that are unclaimed or whose claim has lapsed: at most
        ``limit`` of them, and no more than fit in ``max_bytes`` of encoded batch (at least one)."""
        if not instance_id:
            raise ValueError("instance_id must not be empty")
        if limit < 1 or not claim_seconds > 0 or max_bytes < 1:
            raise ValueError("limit and max_bytes must be >= 1 and claim_seconds > 0")

        # Cheap look first, without the write lock: an idle poller must not contend with pushers.
        def any_claimable(conn: sqlite3.Connection) -> bool:
            return conn.execute(_ANY_CLAIMABLE_SQL, (self._now_epoch(),)).fetchone() is not None

        if not self.read(any_claimable):
            return []

        def claim(conn: sqlite3.Connection) -> list[Event]:
            now = self._now_epoch()
            sizes = conn.execute(_CLAIMABLE_SIZES_SQL, (now, limit)).fetchall()
            take = fit_count((event_wire_bytes(r[0], r[1], int(r[3]), r[2]) for r in sizes), max_bytes)
            ids = [str(row[0]) for row in sizes[:take]]
            found: dict[str, Event] = {}
            for chunk in _chunks(ids):
                marks = _placeholders(len(chunk))  # "?" placeholders only
                conn.execute(_CLAIM_SQL.format(marks), (instance_id, now + claim_seconds, *chunk))
                rows = conn.execute(_CLAIMED_SQL.format(marks), chunk)
                for r in rows:
                    found[str(r[0])] = Event(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), int(r[5]))
            return [found[event_id] for event_id in ids]

        return self.write(claim)

    def _update_claimed(
        self, sql: str, instance_id: str, ids: Sequence[str], leading: tuple[object, ...] = ()
    ) -> int:
        def update(conn: sqlite3.Connection) -> int:
            changed = 0
            for chunk in _chunks(list(ids)):
                # Only "?" placeholders are formatted in; ids and the instance id are bound parameters.
                params = (*leading, *chunk, instance_id)
                cursor = conn.execute(sql.format(_placeholders(len(chunk))), params)
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

    def extend_claim(self, instance_id: str, ids: Sequence[str], claim_seconds: float) -> int:
        """Push the expiry of events still claimed by ``instance_id`` to now + ``claim_seconds`` (a long
        round of split uploads keeps its batch); return how many are still ours."""
        return self._update_claimed(
            "UPDATE events SET claim_expires_at = ? WHERE id IN ({}) AND claimed_by = ?",
            instance_id,
            ids,
            leading=(self._now_epoch() + claim_seconds,),
        )

    def record_rejection(self, instance_id: str, event_id: str, status: int | None, reason: str) -> bool:
        """Count one permanent refusal of ``event_id`` alone, remember why, and give it back for the next
        claim. Only while ``instance_id`` holds it; True if it did."""
        changed = self._update_claimed(
            "UPDATE events SET rejections = rejections + 1, last_status = ?, last_reason = ?, "
            "claimed_by = NULL, claim_expires_at = NULL WHERE id IN ({}) AND claimed_by = ?",
            instance_id,
            [event_id],
            leading=(status, reason[:MAX_REASON_CHARS]),
        )
        return changed == 1

    def dead_letter(self, instance_id: str, event_id: str, status: int | None, reason: str) -> bool:
        """Move ``event_id`` (still claimed by ``instance_id``) to ``dead_letters`` in one transaction,
        counting this last refusal; True if it moved."""
        params = (status, reason[:MAX_REASON_CHARS], to_wire(self._clock.now()), event_id, instance_id)

        def move(conn: sqlite3.Connection) -> bool:
            if conn.execute(_DEAD_LETTER_SQL, params).rowcount != 1:
                return False
            conn.execute("DELETE FROM events WHERE id = ? AND claimed_by = ?", (event_id, instance_id))
            return True

        return self.write(move)

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, newest first (metadata and a short head of the data)."""
        return self.read(lambda conn: read_dead_letters(conn, limit))

    def requeue_dead_letters(self, limit: int) -> tuple[list[DeadLetter], int]:
        """Move every dead letter back to the end of the queue, rejection count reset (ids, data,
        ``created_at`` and attempts kept), in one transaction. Returns up to ``limit`` of the moved
        records (newest first) and how many moved."""

        def move(conn: sqlite3.Connection) -> tuple[list[DeadLetter], int]:
            listed = read_dead_letters(conn, limit)
            conn.execute(
                "INSERT OR IGNORE INTO events (id, type, data, created_at, attempts, rejections) "
                "SELECT id, type, data, created_at, attempts, 0 FROM dead_letters ORDER BY rowid"
            )
            moved = conn.execute("DELETE FROM dead_letters").rowcount
            return listed, int(moved)

        return self.write(move)

    def adopt_from(self, other: EventQueue, batch: int = 500) -> int:
        """Move every claimable event of ``other`` (e.g. the local-only queue after a login) into this
        queue, keeping ids and ``created_at``. Safe to repeat or to crash in: rows are inserted here
        (ignoring ids already present) before they are deleted there. Returns how many were moved."""
        mover = f"adopt-{_new_id()}"
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
