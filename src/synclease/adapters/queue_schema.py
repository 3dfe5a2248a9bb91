"""The queue database's schema, its migrations, and the reads both the queue and the read-only
inspector make (so the two cannot disagree on what a row means).

Version 1 (``events``) is the base; version 2 adds each event's durable rejection count and last
refusal, and the ``dead_letters`` table. A new database is built as version 1 and then migrated, so
every fresh database also runs the migration.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from synclease.core.queue_state import PREVIEW_CHARS, DeadLetter, QueueCounts

QUEUE_SCHEMA_VERSION = 2

BASE_SCHEMA = """
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

#: ``MIGRATIONS[i]`` takes version ``i + 1`` to ``i + 2``.
MIGRATIONS = (
    """
    ALTER TABLE events ADD COLUMN rejections INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE events ADD COLUMN last_status INTEGER NULL;
    ALTER TABLE events ADD COLUMN last_reason TEXT NULL;
    CREATE TABLE IF NOT EXISTS dead_letters (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        rejections INTEGER NOT NULL,
        last_status INTEGER NULL,
        reason TEXT NOT NULL,
        dead_lettered_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS dead_letters_newest ON dead_letters (dead_lettered_at);
    """,
)

_NEWEST_DEAD_LETTERS_SQL = (
    "SELECT id, type, created_at, dead_lettered_at, attempts, rejections, last_status, reason, "
    "length(CAST(data AS BLOB)), substr(data, 1, ?) FROM dead_letters "
    "ORDER BY dead_lettered_at DESC, rowid DESC LIMIT ?"
)
_HAS_DEAD_LETTERS_SQL = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dead_letters'"


def has_dead_letters_table(conn: sqlite3.Connection) -> bool:
    return conn.execute(_HAS_DEAD_LETTERS_SQL).fetchone() is not None


def read_counts(conn: sqlite3.Connection) -> QueueCounts:
    """Events waiting and events dead-lettered (0 for a version-1 database, which has no table yet)."""
    depth = int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    dead = 0
    if has_dead_letters_table(conn):
        dead = int(conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])
    return QueueCounts(depth, dead)


def _dead_letter(row: Sequence[Any]) -> DeadLetter:
    return DeadLetter(
        id=str(row[0]),
        type=str(row[1]),
        created_at=str(row[2]),
        dead_lettered_at=str(row[3]),
        attempts=int(row[4]),
        rejections=int(row[5]),
        last_status=None if row[6] is None else int(row[6]),
        reason=str(row[7]),
        data_bytes=int(row[8]),
        data_head=str(row[9]),
    )


def read_dead_letters(conn: sqlite3.Connection, limit: int) -> list[DeadLetter]:
    """Up to ``limit`` dead letters, newest first, without their data (a size and a short head)."""
    if not has_dead_letters_table(conn):
        return []
    rows = conn.execute(_NEWEST_DEAD_LETTERS_SQL, (PREVIEW_CHARS + 1, limit)).fetchall()
    return [_dead_letter(row) for row in rows]
