"""Read a queue database without changing anything or creating any file (the doctor, listings).

:class:`~synclease.adapters.queue.EventQueue` creates, migrates and writes; this module only looks:

* a missing file is reported as missing (``None``), never created; a symlink, a foreign or
  group/world-readable file is a problem, never opened;
* the file is opened read-only (``mode=ro``). SQLite's read-only open of a WAL database still
  *creates* the ``-wal`` and ``-shm`` files when they are absent, so:

  - when a ``-wal`` file exists (a writer is connected, or one crashed), SQLite's normal locked
    read is used: it creates nothing and sees what is in the WAL;
  - when there is none, every committed transaction is in the database file itself, which is read
    ``immutable=1`` (no locks, no sidecar files). A writer could start meanwhile, so the read is
    optimistic: it counts only if the file's identity, size and times, and the absence of a
    ``-wal``, are the same before and after; otherwise it is retried, and in the end made the
    locked way.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from synclease.adapters.fsio import UnsafeFileError, check_private
from synclease.adapters.queue_schema import QUEUE_SCHEMA_VERSION, read_counts, read_dead_letters
from synclease.core.queue_state import DeadLetter, QueueCounts, QueueFacts, QueueKind
from synclease.core.record import record

#: How long a locked read waits for a writer (a WAL recovery, a checkpoint) before "busy".
READ_TIMEOUT_SECONDS = 5.0
OPTIMISTIC_ATTEMPTS = 3

_Stamp = tuple[int, int, int, int, int, bool]


@record
class Inspection:
    facts: QueueFacts
    dead_letters: list[DeadLetter]


class _Unusable(Exception):
    def __init__(self, problem: str, detail: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.detail = detail


def sidecars(path: Path) -> list[Path]:
    """SQLite's companion files of ``path`` (WAL, shared memory, rollback journal)."""
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def _stamp(path: Path) -> _Stamp:
    st = os.lstat(path)
    wal = os.path.lexists(sidecars(path)[0])
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, wal)


def _check_file(path: Path) -> bool:
    """False if ``path`` does not exist; raises :class:`_Unusable` if it must not be opened."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _Unusable("unreadable", exc.strerror or "") from None
    if stat.S_ISLNK(st.st_mode):
        raise _Unusable("symlink")
    try:
        check_private(path, st)
    except UnsafeFileError as exc:
        raise _Unusable(exc.reason, exc.detail) from None
    return True


def _read(path: Path, immutable: bool, limit: int) -> tuple[int, QueueCounts, list[DeadLetter]]:
    uri = path.as_uri() + ("?mode=ro&immutable=1" if immutable else "?mode=ro")
    conn = sqlite3.connect(uri, uri=True, timeout=READ_TIMEOUT_SECONDS, isolation_level=None)
    try:
        conn.execute("BEGIN")  # one snapshot for every read below
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version == 0:
            if conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
                raise _Unusable("not_a_queue_database", "tables but no schema version")
            return 0, QueueCounts(0, 0), []  # created, never initialised: the next open builds it
        if not 1 <= version <= QUEUE_SCHEMA_VERSION:
            raise _Unusable("unknown_version", str(version))
        counts = read_counts(conn)
        return version, counts, read_dead_letters(conn, limit) if limit > 0 else []
    finally:
        conn.close()


def _problem(exc: sqlite3.Error) -> _Unusable:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return _Unusable("busy", text)
    if isinstance(exc, sqlite3.OperationalError) and "unable to open" in text:
        return _Unusable("unopenable", text)
    return _Unusable("not_a_queue_database", text)


def _read_quietly(path: Path, limit: int) -> tuple[int, QueueCounts, list[DeadLetter]]:
    for _ in range(OPTIMISTIC_ATTEMPTS):
        before = _stamp(path)
        immutable = not before[-1]
        outcome: tuple[int, QueueCounts, list[DeadLetter]] | _Unusable
        try:
            outcome = _read(path, immutable, limit)
        except sqlite3.Error as exc:
            outcome = _problem(exc)
        except _Unusable as exc:
            outcome = exc
        if not immutable or _stamp(path) == before:
            if isinstance(outcome, _Unusable):
                raise outcome
            return outcome
    try:  # the file kept changing: a writer is active, so its -wal is there to read through
        return _read(path, False, limit)
    except sqlite3.Error as exc:
        raise _problem(exc) from None


def inspect_queue(path: Path, queue: QueueKind, dead_letter_limit: int = 0) -> Inspection | None:
    """The facts of the queue database at ``path`` (and up to ``dead_letter_limit`` dead letters,
    newest first), or None when there is no such file. Never raises for a bad file: its problem is
    in the facts."""
    try:
        if not _check_file(path):
            return None
        version, counts, dead = _read_quietly(path, dead_letter_limit)
    except FileNotFoundError:
        return None
    except _Unusable as exc:
        return Inspection(QueueFacts(path, queue, problem=exc.problem, detail=exc.detail[:200]), [])
    except OSError as exc:
        return Inspection(QueueFacts(path, queue, problem="unreadable", detail=exc.strerror or ""), [])
    return Inspection(QueueFacts(path, queue, counts=counts, schema_version=version), dead)
