"""The ledger file ``<root>/ledger/sync.jsonl`` and its one rotation ``sync.jsonl.1`` (spec:
``protocol/ledger-v1.md``, decisions: ``docs/adr/0009-the-ledger.md``).

Appending holds the lock file ``sync.jsonl.lock`` (:func:`~synclease.adapters.locks.file_lock`), opens
the ledger ``O_APPEND | O_NOFOLLOW`` (created 0600, in a 0700 directory it creates if the root
exists), refuses anything but a private regular file of ours, rotates it with ``os.replace`` when this
line would take it past ``max_file_bytes``, and writes the line with exactly one ``write``. A short
write is cut back off, so the file only ever gains whole lines (an unterminated fragment left by a
crash is first closed with a newline, so it stays one bad line). :meth:`LedgerStore.append` never
raises for an I/O fault or an unsafe file: it returns :class:`Appended`, whose ``problem`` the caller
logs; the event is then lost and the caller carries on.

Reading takes no lock and creates nothing: the rotated file, then the current one, each bounded to
``max_file_bytes + MAX_LINE_BYTES`` (the tail of a larger file), opened without following a link or
blocking. Refused files are :attr:`LedgerRead.problems`, bad lines are counted in ``skipped``.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from synclease.adapters.fsio import (
    PrivateHandle,
    UnsafeFileError,
    check_private_dir,
    ensure_private_dir,
    open_private,
)
from synclease.adapters.locks import file_lock
from synclease.adapters.root import DaemonRoot
from synclease.core.codec import CodecError
from synclease.core.errors import BadInputError, RootError, SyncleaseError
from synclease.core.ledger import MAX_FILE_BYTES, MAX_LINE_BYTES, LedgerEvent, LedgerProblem, LedgerRead
from synclease.core.ledger_codec import decode_event, decode_lines, encode_event
from synclease.core.ledger_queries import has_ended
from synclease.core.record import record

#: An append waits at most this long for the lock (held by others only for one write or a rename).
LOCK_TIMEOUT_SECONDS = 2.0
_READ_ATTEMPTS = 3
_READ_CHUNK = 64 * 1024
_APPEND_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT
_ERRNO_PROBLEMS = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EMFILE: "too_many_files",
    errno.ENFILE: "too_many_files",
}
_BUSY_HINT = "another synclease process is writing the ledger; the event was not recorded"


@record
class Appended:
    """One append's outcome: ``ok``, or a short ``problem`` tag (``disk_full``, ``too_many_files``,
    ``short_write``, ``io_error``, ``busy``, ``bad_lock``, ``rotate_failed``, ``missing_root``,
    ``unusable_dir``, ``symlink``, ``not_regular_file``, ``foreign_owner``, ``insecure_mode``, or
    ``already_ended`` for an ``append(..., once=True)`` that had nothing to do) and a ``detail`` for a
    log line. ``rotated``: the old ledger became ``sync.jsonl.1`` first."""

    ok: bool
    problem: str | None = None
    detail: str = ""
    rotated: bool = False

    def one_line(self) -> str:
        if self.ok:
            return "ledger event recorded" + (" (ledger rotated)" if self.rotated else "")
        return f"ledger event not recorded ({self.problem}{': ' + self.detail if self.detail else ''})"


def _io_problem(exc: OSError, rotated: bool = False) -> Appended:
    problem = _ERRNO_PROBLEMS.get(exc.errno or 0, "io_error")
    return Appended(False, problem, exc.strerror or str(exc), rotated)


def _open_for_read(path: Path) -> PrivateHandle | LedgerProblem | None:
    try:
        return open_private(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except UnsafeFileError as exc:
        return LedgerProblem(path, exc.reason, exc.detail)
    except OSError as exc:
        return LedgerProblem(path, "unreadable", exc.strerror or str(exc))


def _close(handle: PrivateHandle | LedgerProblem | None) -> None:
    if isinstance(handle, PrivateHandle):
        os.close(handle.fd)


def _still_there(path: Path, handle: PrivateHandle | LedgerProblem | None) -> bool:
    """Whether ``path`` still names what was opened (no rotation replaced it meanwhile)."""
    if isinstance(handle, LedgerProblem):
        return True
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return handle is None
    except OSError:
        return True
    return handle is not None and (st.st_dev, st.st_ino) == (handle.st.st_dev, handle.st.st_ino)


def _read_span(fd: int, offset: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    while limit > 0:
        chunk = os.pread(fd, min(limit, _READ_CHUNK), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        limit -= len(chunk)
    return b"".join(chunks)


def _line_for(handle: PrivateHandle, line: bytes) -> bytes:
    """``line``, after an LF if the file ends mid-line (a writer died there): the fragment stays one
    bad line and this event stays whole."""
    size = handle.st.st_size
    return line if size == 0 or os.pread(handle.fd, 1, size - 1) == b"\n" else b"\n" + line


def _write_once(handle: PrivateHandle, data: bytes, rotated: bool) -> Appended:
    size = handle.st.st_size
    try:
        written = os.write(handle.fd, data)  # the one write: O_APPEND puts it whole at the end
    except OSError as exc:
        return _io_problem(exc, rotated)
    if written != len(data):
        with contextlib.suppress(OSError):
            os.ftruncate(handle.fd, size)
        return Appended(False, "short_write", f"{written} of {len(data)} bytes", rotated)
    return Appended(True, rotated=rotated)


class LedgerStore:
    """The sync family's ledger in one daemon root. ``max_file_bytes`` is :data:`MAX_FILE_BYTES`
    except in tests (at least two lines)."""

    def __init__(
        self,
        root: DaemonRoot,
        *,
        max_file_bytes: int = MAX_FILE_BYTES,
        lock_timeout: float = LOCK_TIMEOUT_SECONDS,
    ) -> None:
        if max_file_bytes < 2 * MAX_LINE_BYTES:
            raise ValueError(f"max_file_bytes must be at least {2 * MAX_LINE_BYTES}")
        self.root = root
        self.max_file_bytes = max_file_bytes
        self.lock_timeout = lock_timeout

    @property
    def path(self) -> Path:
        return self.root.ledger_path

    @property
    def rotated_path(self) -> Path:
        return self.root.ledger_rotated_path

    @property
    def lock_path(self) -> Path:
        return self.root.ledger_lock_path

    # --- appending ----------------------------------------------------------------------------

    def append(self, event: LedgerEvent, *, once: bool = False) -> Appended:
        """Record ``event`` as one line. Never raises for I/O faults (disk full, EMFILE), a busy lock
        or an unsafe ledger path: the returned :class:`Appended` says what went wrong.

        ``once`` (for ``vanished``): record it only if its instance has no ``retired``, ``reaped`` or
        ``vanished`` event yet, checked under the lock; else ``problem`` is ``already_ended``."""
        line = encode_event(event)
        try:
            if not check_private_dir(self.root.path):
                return Appended(False, "missing_root", str(self.root.path))
            ensure_private_dir(self.root.ledger_dir, parents=False)
        except RootError as exc:
            return Appended(False, "unusable_dir", exc.one_line())
        try:
            with file_lock(self.lock_path, self.lock_timeout, busy_hint=_BUSY_HINT):
                if once and has_ended(self.newest_first(), event.instance_id or ""):  # no id: no history
                    return Appended(False, "already_ended", event.instance_id or "")
                return self._append_locked(line)
        except BadInputError as exc:  # the lock path is a symlink, a FIFO, someone else's file
            return Appended(False, "bad_lock", exc.one_line())
        except SyncleaseError as exc:  # the lock stayed busy past the timeout
            return Appended(False, "busy", exc.one_line())
        except UnsafeFileError as exc:
            return Appended(False, exc.reason, exc.detail)
        except OSError as exc:
            return _io_problem(exc)

    def _append_locked(self, line: bytes) -> Appended:
        handle = open_private(self.path, _APPEND_FLAGS)
        try:
            data = _line_for(handle, line)
        except BaseException:
            os.close(handle.fd)
            raise
        rotated = handle.st.st_size > 0 and handle.st.st_size + len(data) > self.max_file_bytes
        if rotated:
            os.close(handle.fd)
            try:
                os.replace(self.path, self.rotated_path)
            except OSError as exc:
                return Appended(False, "rotate_failed", exc.strerror or str(exc))
            handle, data = open_private(self.path, _APPEND_FLAGS | os.O_EXCL), line
        try:
            return _write_once(handle, data, rotated)
        finally:
            os.close(handle.fd)

    # --- reading ------------------------------------------------------------------------------

    def read(self) -> LedgerRead:
        """Every valid event, oldest first, across the rotation. A missing ledger is an empty history;
        nothing is created, locked or followed."""
        spans = self._spans()
        if isinstance(spans, LedgerProblem):
            return LedgerRead(problems=(spans,))
        events: list[LedgerEvent] = []
        skipped = 0
        problems: list[LedgerProblem] = []
        for data, complete, problem, cut in spans:
            found, bad = decode_lines(data, complete=complete)
            events.extend(found)
            skipped += bad + cut  # cut: the line cut by the bound (or the unreadable rest)
            if problem is not None:
                problems.append(problem)
        return LedgerRead(tuple(events), skipped, tuple(problems))

    def newest_first(self) -> Iterator[LedgerEvent]:
        """The valid events, newest first, each decoded only when the caller gets that far: ``sync
        status`` wants one retirement, the respawn backoff the failures since the last ``serving``,
        and a full ledger is thousands of lines. The files are read at the first step; their problems
        are :meth:`read`'s to report."""
        spans = self._spans()
        if isinstance(spans, LedgerProblem):
            return
        for data, _complete, _problem, _cut in reversed(spans):
            lines = data.split(b"\n")
            lines.pop()  # after the last newline: not a line (yet), or already counted by read()
            for raw in reversed(lines):
                try:
                    yield decode_event(raw)
                except CodecError:
                    continue

    def _spans(self) -> list[tuple[bytes, bool, LedgerProblem | None, bool]] | LedgerProblem:
        """The bytes of the rotated file, then of the current one, each as ``(data, complete, problem,
        cut)``: ``complete`` when nobody writes the file any more, ``problem`` met opening or reading
        it, ``cut`` when reading it lost a line. Or the problem of the ledger directory."""
        try:
            if not check_private_dir(self.root.ledger_dir):
                return []
        except RootError as exc:
            return LedgerProblem(self.root.ledger_dir, "unusable_dir", exc.one_line())
        spans: list[tuple[bytes, bool, LedgerProblem | None, bool]] = []
        for handle, complete in zip(self._open_both(), (True, False), strict=True):
            if isinstance(handle, LedgerProblem):
                spans.append((b"", complete, handle, False))
                continue
            if handle is None:
                continue
            try:
                data, problem = self._read_bounded(handle)
            finally:
                os.close(handle.fd)
            spans.append((data, complete, problem, problem is not None))
        return spans

    def _open_both(self) -> tuple[PrivateHandle | LedgerProblem | None, PrivateHandle | LedgerProblem | None]:
        """The rotated file, then the current one, as one consistent pair: if a rotation moved the
        files between the two opens, try again (then settle for the current file alone)."""
        for _ in range(_READ_ATTEMPTS):
            older = _open_for_read(self.rotated_path)
            current = _open_for_read(self.path)
            if _still_there(self.rotated_path, older):
                return older, current
            _close(older)
            _close(current)
        return None, _open_for_read(self.path)

    def _read_bounded(self, handle: PrivateHandle) -> tuple[bytes, LedgerProblem | None]:
        bound = self.max_file_bytes + MAX_LINE_BYTES
        size = handle.st.st_size
        try:
            if size <= bound:
                return _read_span(handle.fd, 0, bound), None
            data = _read_span(handle.fd, size - bound, bound)
        except OSError as exc:
            return b"", LedgerProblem(handle.path, "unreadable", exc.strerror or str(exc))
        start = data.find(b"\n") + 1  # the first line is cut: drop it
        return data[start:] if start else b"", LedgerProblem(handle.path, "too_large", f"{size} bytes")
