"""OS file locks (``filelock``: ``flock`` on Unix), on lock files that must be regular files we own.

Two uses: a scope's or a project's *mutex* (:func:`file_lock`, held briefly to change a record), and a
daemon's *holder lock* (:class:`HolderLock`, held for its whole life; the kernel drops it when the
process dies, so "lock free" proves "holder dead" without trusting a PID). A lock path that is a
symlink, not a regular file, or someone else's is refused, never followed. ``filelock`` is imported
only when a lock is really taken: the lock-free hot paths never pay for it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from synclease.core.errors import BadInputError, SyncleaseError

if TYPE_CHECKING:
    from filelock import BaseFileLock

LOCK_FILE_MODE = 0o600


def check_lock_path(path: Path) -> bool:
    """True if ``path`` is a regular lock file we own, False if it does not exist yet.

    Anything else there (a symlink, a directory, a FIFO, another user's file) is a
    :class:`~synclease.core.errors.BadInputError`: one line, exit 2, and the link is never followed.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise BadInputError(
            f"cannot check lock file {path}: {exc.strerror}", hint="check its directory"
        ) from None
    if stat.S_ISLNK(st.st_mode):
        raise BadInputError(f"lock file {path} is a symlink", hint=f"remove it: rm -- {path}")
    if not stat.S_ISREG(st.st_mode):
        raise BadInputError(f"lock file {path} is not a regular file", hint="move it out of the way")
    if st.st_uid != os.geteuid():
        raise BadInputError(f"lock file {path} is owned by uid {st.st_uid}, not you", hint="remove it")
    return True


def _new_lock(path: Path, timeout: float) -> BaseFileLock:
    from filelock import FileLock

    return FileLock(path, timeout=timeout, thread_local=False, mode=LOCK_FILE_MODE)


@contextlib.contextmanager
def file_lock(path: Path, timeout: float, *, busy_hint: str) -> Iterator[None]:
    """Hold the lock at ``path`` for the block, waiting up to ``timeout``; busy is one clear error."""
    from filelock import Timeout

    check_lock_path(path)
    lock = _new_lock(path, timeout)
    try:
        lock.acquire()
    except Timeout:
        raise SyncleaseError(f"the lock {path} is busy", hint=busy_hint) from None
    try:
        yield
    finally:
        lock.release()


class HolderLock:
    """The per-instance lock a daemon holds for its whole life."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: BaseFileLock | None = None

    def acquire(self) -> None:
        check_lock_path(self.path)
        self._lock = _new_lock(self.path, 0)
        self._lock.acquire(timeout=0)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release(force=True)


def probe_holder_lock(path: Path) -> bool | None:
    """True if nobody holds the lock at ``path`` (we took and dropped it), False if it is held,
    None if there is no such regular file of ours to check (never creates one, never follows a link)."""
    from filelock import Timeout

    try:
        if not check_lock_path(path):
            return None
    except BadInputError:
        return None
    lock = _new_lock(path, 0)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return False
    except OSError:
        return None
    lock.release(force=True)
    return True
