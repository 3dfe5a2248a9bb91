"""The durable event queue: one SQLite database per auth scope in ``<root>/queue/``.

Decisions (see ``docs/adr/0004-durable-queue.md``):

* WAL journal with ``synchronous=FULL``: a committed ``enqueue`` survives a process crash *and* a power
  loss, because ``sync push`` reports success to a person who then forgets the events. Batched
  writes (``enqueue_many``, one claim, one complete per batch) keep the fsync cost per transaction.
* Several processes open the same file (``sync push`` enqueues while the daemon claims): every write is
  ``BEGIN IMMEDIATE`` (take the write lock up front, so no reader-to-writer upgrade can fail) and the
  connection waits up to ``busy_timeout`` for a lock.
* At-least-once: a batch is *claimed* (``claimed_by``, ``claim_expires_at`` in wall-clock epoch seconds,
  comparable across processes) rather than removed; ``complete`` deletes only rows the caller still
  holds; a claim that lapses (its holder died) is claimable by anyone. Receivers dedupe by ``id``.

One :class:`EventQueue` holds one connection, shared by threads under a lock (the worker thread claims
while the health handler asks for ``depth``). Database trouble is :class:`QueueError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from synclease.clock import SYSTEM_CLOCK, Clock, to_wire
from synclease.errors import BadInputError, SyncleaseError
from synclease.fsio import PRIVATE_FILE_MODE, UnsafeFileError, check_private, ensure_private_dir
from synclease.root import DaemonRoot

QUEUE_SCHEMA_VERSION = 1
MAX_EVENT_TYPE_CHARS = 200
#: One event's ``data``, JSON-encoded, may not exceed this: a huge event would block every batch.
MAX_EVENT_DATA_BYTES = 1024 * 1024
#: How long a write waits for another process's lock before giving up with ``QueueError("busy")``.
BUSY_TIMEOUT_SECONDS = 30.0
#: Ids per ``IN (...)`` statement; well under SQLite's bound-parameter limit on every version.
_ID_CHUNK = 500
_NDJSON_KEYS = frozenset({"type", "data"})

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

T = TypeVar("T")


class QueueError(SyncleaseError):
    """The queue database cannot be used; ``reason`` is a short machine-readable tag."""

    def __init__(self, reason: str, detail: str = "", *, path: Path | None = None) -> None:
        where = f"event queue {path}" if path else "event queue"
        super().__init__(
            f"{where} is not usable ({reason}{': ' + detail if detail else ''})",
            hint="run: synclease auth doctor",
        )
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Event:
    """A queued event. ``data_json`` is the stored JSON text, sent as-is; ``data`` decodes it."""

    id: str
    type: str
    data_json: str
    created_at: str
    attempts: int

    @property
    def data(self) -> Any:
        return json.loads(self.data_json)


def scope_digest(auth_scope: str | None) -> str:
    """Short stable digest naming the queue of an auth scope (``None`` = the local-only queue)."""
    return hashlib.sha256((auth_scope or "local").encode()).hexdigest()[:16]


def queue_path(root: DaemonRoot, auth_scope: str | None) -> Path:
    return root.queue_dir / f"{scope_digest(auth_scope)}.sqlite3"


def open_queue(root: DaemonRoot, auth_scope: str | None, clock: Clock = SYSTEM_CLOCK) -> EventQueue:
    """Open (creating if needed) the queue of ``auth_scope`` in ``root``."""
    ensure_private_dir(root.queue_dir)
    return EventQueue(queue_path(root, auth_scope), clock)


# --- pure validation ------------------------------------------------------------------------------


def validate_event(event_type: object, data: object) -> tuple[str, str]:
    """Check one event; return ``(type, data as compact JSON)``. Bad input is :class:`BadInputError`."""
    if not isinstance(event_type, str) or not event_type.strip():
        raise BadInputError("event type must be a non-empty string", hint="give e.g. --type build.finished")
    if len(event_type) > MAX_EVENT_TYPE_CHARS:
        raise BadInputError(
            f"event type is longer than {MAX_EVENT_TYPE_CHARS} characters", hint="use a shorter type name"
        )
    if not event_type.isprintable():
        raise BadInputError("event type contains control characters", hint="use a plain type name")
    try:
        data_json = json.dumps(data, allow_nan=False, separators=(",", ":"), ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        raise BadInputError(
            f"event data is not JSON-serialisable ({type(data).__name__})",
            hint="give plain JSON values: objects, arrays, strings, finite numbers, true/false/null",
        ) from None
    if len(data_json) > MAX_EVENT_DATA_BYTES:
        raise BadInputError(
            f"event data is larger than {MAX_EVENT_DATA_BYTES} bytes as JSON", hint="split it into events"
        )
    return event_type, data_json


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_ndjson_events(lines: Iterable[str]) -> list[tuple[str, Any]]:
    """Parse NDJSON lines ``{"type": T, "data": D}`` into ``(type, data)`` pairs; blank lines are skipped.

    ``data`` may be omitted (``null``); other keys are refused so a typo is not silently dropped.
    A bad line is :class:`BadInputError` naming its line number; nothing is returned for bad input.
    """
    events: list[tuple[str, Any]] = []
    hint = 'each line must be a JSON object like {"type": "build.finished", "data": {...}}'
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not valid JSON"
            raise BadInputError(f"line {number}: {reason}", hint=hint) from None
        if not isinstance(document, dict):
            raise BadInputError(f"line {number}: not a JSON object", hint=hint)
        unknown = sorted(set(document) - _NDJSON_KEYS)
        if unknown:
            raise BadInputError(f"line {number}: unknown key {unknown[0][:40]!r}", hint=hint)
        try:
            validate_event(document.get("type"), document.get("data"))
        except BadInputError as exc:
            raise BadInputError(f"line {number}: {exc.message}", hint=exc.hint) from None
        events.append((document["type"], document.get("data")))
    return events


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), _ID_CHUNK):
        yield ids[start : start + _ID_CHUNK]


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


# --- the queue ------------------------------------------------------------------------------------


class EventQueue:
    """A durable FIFO of events in one SQLite file (created 0600). Safe across threads and processes."""

    def __init__(
        self, path: Path, clock: Clock = SYSTEM_CLOCK, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS
    ) -> None:
        self.path = path
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = self._open()

    # --- opening ----------------------------------------------------------------------------------

    def _precreate(self) -> tuple[int, int]:
        """Create the file 0600 without following a link, check it is ours and private."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, PRIVATE_FILE_MODE)
        except OSError as exc:
            reason = "symlink" if self.path.is_symlink() else "unopenable"
            raise QueueError(reason, exc.strerror or "", path=self.path) from None
        try:
            st = os.fstat(fd)
            check_private(self.path, st)
        except UnsafeFileError as exc:
            raise QueueError(exc.reason, exc.detail, path=self.path) from None
        finally:
            os.close(fd)
        return st.st_dev, st.st_ino

    def _open(self) -> sqlite3.Connection:
        identity = self._precreate()
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise QueueError("unopenable", str(exc), path=self.path) from None
        try:
            st = os.stat(self.path, follow_symlinks=False)
            if (st.st_dev, st.st_ino) != identity:
                raise QueueError("replaced_while_opening", path=self.path)
            self._retry_locked(lambda: self._init_schema(conn))
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise QueueError("not_a_queue_database", str(exc), path=self.path) from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _retry_locked(self, action: Callable[[], T]) -> T:
        """Run ``action``, retrying while another process holds a lock (first opens race on WAL setup)."""
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise QueueError("busy", str(exc), path=self.path) from None
                time.sleep(0.01)

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise QueueError("no_wal", f"journal_mode is {mode}", path=self.path)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={QUEUE_SCHEMA_VERSION}")
            elif version != QUEUE_SCHEMA_VERSION:
                raise QueueError("unknown_version", str(version), path=self.path)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # --- plumbing ---------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise QueueError("closed", path=self.path)
        return self._conn

    def _write(self, action: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``action`` inside ``BEGIN IMMEDIATE`` … ``COMMIT``; roll back on any failure."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                reason = "busy" if "locked" in str(exc) else "write_failed"
                raise QueueError(reason, str(exc), path=self.path) from None
            try:
                result = action(conn)
                conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise QueueError("write_failed", str(exc), path=self.path) from None
                raise
            return result

    def _now_epoch(self) -> float:
        return self._clock.now().timestamp()

    # --- API --------------------------------------------------------------------------------------

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

        self._write(insert)
        return [row[0] for row in rows]

    def depth(self) -> int:
        """Events not yet delivered (claimed or not)."""
        with self._lock:
            try:
                return int(self._connection().execute("SELECT COUNT(*) FROM events").fetchone()[0])
            except sqlite3.Error as exc:
                raise QueueError("read_failed", str(exc), path=self.path) from None

    def claim_batch(self, instance_id: str, limit: int, claim_seconds: float) -> list[Event]:
        """Atomically claim up to ``limit`` oldest events that are unclaimed or whose claim has lapsed."""
        if not instance_id:
            raise ValueError("instance_id must not be empty")
        if limit < 1 or not claim_seconds > 0:
            raise ValueError("limit must be >= 1 and claim_seconds > 0")

        # Cheap look first, without the write lock: an idle poller must not contend with pushers.
        with self._lock:
            try:
                found = self._connection().execute(_CLAIMABLE_SQL + " LIMIT 1", (self._now_epoch(),))
                if found.fetchone() is None:
                    return []
            except sqlite3.Error as exc:
                raise QueueError("read_failed", str(exc), path=self.path) from None

        def claim(conn: sqlite3.Connection) -> list[Event]:
            now = self._now_epoch()
            rows = conn.execute(_CLAIMABLE_SQL + " ORDER BY rowid LIMIT ?", (now, limit)).fetchall()
            ids = [row[0] for row in rows]
            for chunk in _chunks(ids):
                sql = _CLAIM_SQL.format(_placeholders(len(chunk)))  # "?" placeholders only
                conn.execute(sql, (instance_id, now + claim_seconds, *chunk))
            return [Event(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]) + 1) for r in rows]

        return self._write(claim)

    def _update_claimed(self, sql: str, instance_id: str, ids: Sequence[str]) -> int:
        def update(conn: sqlite3.Connection) -> int:
            changed = 0
            for chunk in _chunks(list(ids)):
                # Only "?" placeholders are formatted in; ids and the instance id are bound parameters.
                cursor = conn.execute(sql.format(_placeholders(len(chunk))), (*chunk, instance_id))
                changed += cursor.rowcount
            return changed

        return self._write(update) if ids else 0

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

            self._write(insert)
            moved += other.complete(mover, [e.id for e in events])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> EventQueue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
