"""A private SQLite database file: created 0600 without following a link, WAL with
``synchronous=FULL``, versioned schema with forward migrations, and write transactions that take the
lock up front.

The schema version lives in ``PRAGMA user_version``. A new file gets the base schema and then every
migration, so a fresh database and a migrated one are built by the same statements; an older file is
migrated in the same ``BEGIN IMMEDIATE`` transaction that checks its version (all or nothing, and two
processes opening it at once migrate it once); a newer or unknown version is refused, never touched.

Several processes may open the same file (``sync push`` enqueues while the daemon claims): every write
is ``BEGIN IMMEDIATE`` (no reader-to-writer upgrade can fail) and waits up to ``busy_timeout`` for
another process's lock. Database trouble is :class:`DatabaseError` with a short ``reason``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.fsio import PRIVATE_FILE_MODE, UnsafeFileError, check_private
from synclease.core.clock import Clock
from synclease.core.errors import SyncleaseError

#: How long a write waits for another process's lock before giving up with ``reason="busy"``.
BUSY_TIMEOUT_SECONDS = 30.0
RETRY_SECONDS = 0.01

T = TypeVar("T")


class DatabaseError(SyncleaseError):
    """The database cannot be used; ``reason`` is a short machine-readable tag."""

    def __init__(
        self, reason: str, detail: str = "", *, path: Path | None = None, what: str = "database"
    ) -> None:
        where = f"{what} {path}" if path else what
        super().__init__(
            f"{where} is not usable ({reason}{': ' + detail if detail else ''})",
            hint="run: synclease auth doctor",
        )
        self.reason = reason
        self.detail = detail


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements one by one (``executescript`` would commit our transaction)."""
    for statement in filter(None, (s.strip() for s in script.split(";"))):
        conn.execute(statement)


class PrivateDatabase:
    """One connection to one private database file, shared by threads under a lock."""

    what = "database"

    def __init__(
        self,
        path: Path,
        schema: str,
        schema_version: int,
        clock: Clock = SYSTEM_CLOCK,
        *,
        busy_timeout: float = BUSY_TIMEOUT_SECONDS,
        migrations: Sequence[str] = (),
    ) -> None:
        """``schema`` builds version ``schema_version - len(migrations)``; ``migrations[i]`` takes the
        database from that version + i to the next."""
        if len(migrations) >= schema_version:
            raise ValueError("the base schema must have a version of at least 1")
        self.path = path
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self._migrations = tuple(migrations)
        self._conn: sqlite3.Connection | None = self._open(schema, schema_version)

    def error(self, reason: str, detail: str = "") -> DatabaseError:
        return DatabaseError(reason, detail, path=self.path, what=self.what)

    # --- opening ----------------------------------------------------------------------------------

    def _precreate(self) -> tuple[int, int]:
        """Create the file 0600 without following a link, check it is ours and private."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, PRIVATE_FILE_MODE)
        except OSError as exc:
            reason = "symlink" if self.path.is_symlink() else "unopenable"
            raise self.error(reason, exc.strerror or "") from None
        try:
            st = os.fstat(fd)
            check_private(self.path, st)
        except UnsafeFileError as exc:
            raise self.error(exc.reason, exc.detail) from None
        finally:
            os.close(fd)
        return st.st_dev, st.st_ino

    def _open(self, schema: str, version: int) -> sqlite3.Connection:
        identity = self._precreate()
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self.error("unopenable", str(exc)) from None
        try:
            st = os.stat(self.path, follow_symlinks=False)
            if (st.st_dev, st.st_ino) != identity:
                raise self.error("replaced_while_opening")
            self._retry_locked(lambda: self._init_schema(conn, schema, version))
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self.error("not_a_queue_database", str(exc)) from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _retry_locked(self, action: Callable[[], T]) -> T:
        """Run ``action``, retrying while another process holds a lock (first opens race on WAL setup)."""
        deadline = self._clock.monotonic() + self._busy_timeout
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if self._clock.monotonic() >= deadline:
                    raise self.error("busy", str(exc)) from None
                self._clock.sleep(RETRY_SECONDS)

    def _init_schema(self, conn: sqlite3.Connection, schema: str, version: int) -> None:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise self.error("no_wal", f"journal_mode is {mode}")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = int(conn.execute("PRAGMA user_version").fetchone()[0])
            base = version - len(self._migrations)
            current = found
            if current == 0:
                _run_script(conn, schema)
                current = base
            if not base <= current <= version:
                raise self.error("unknown_version", str(found))
            for script in self._migrations[current - base :]:
                _run_script(conn, script)
            if found != version:
                conn.execute(f"PRAGMA user_version={int(version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # --- use --------------------------------------------------------------------------------------

    def read(self, action: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only ``action`` on the shared connection."""
        with self._lock:
            try:
                return action(self._connection())
            except sqlite3.Error as exc:
                raise self.error("read_failed", str(exc)) from None

    def write(self, action: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``action`` inside ``BEGIN IMMEDIATE`` … ``COMMIT``; roll back on any failure."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                reason = "busy" if "locked" in str(exc) else "write_failed"
                raise self.error(reason, str(exc)) from None
            try:
                result = action(conn)
                conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self.error("write_failed", str(exc)) from None
                raise
            return result

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise self.error("closed")
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
