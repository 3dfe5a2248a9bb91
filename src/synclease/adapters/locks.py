"""OS file locks (``flock(2)``), on lock files that must be regular files we own.

Two uses: a scope's or a project's *mutex* (:func:`file_lock`, held briefly to change a record), and a
daemon's *holder lock* (:class:`HolderLock`, held for its whole life; the kernel drops it when the
process dies, so "lock free" proves "holder dead" without trusting a PID). A lock path that is a
symlink, not a regular file, or someone else's is refused, never followed (``O_NOFOLLOW`` as well).

``flock`` directly, not a lock library: an idle daemon holds its holder lock for its whole life, and
importing ``filelock`` cost it ~3 MB of resident memory (and OpenSSL's ~3.5 MB, through ``secrets``).
A flock belongs to the open file description, which is never inherited (``O_CLOEXEC``), so a spawned
child never holds its parent's lock; a file system without ``flock`` fails loudly (``OSError``) instead
of falling back to a lock that would not be kernel proof (ADR 0001).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.core.clock import Clock
from synclease.core.errors import BadInputError, SyncleaseError

LOCK_FILE_MODE = 0o600
#: How often :func:`file_lock` tries again while the lock is busy.
POLL_SECONDS = 0.05
#: What ``flock(LOCK_NB)`` says of a lock held elsewhere (some file systems say EACCES).
_BUSY = frozenset({errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES})


class LockBusy(TimeoutError):
    """The holder lock is held by another open file: another process, or another lock here."""


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


def _open(path: Path, *, create: bool = True) -> int:
    """A descriptor of the lock file, never through a symlink. With ``create``, the file (0600) and its
    missing parent directories are created, as ``filelock`` did (a declared family's ``leases/<name>``)."""
    if create:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # private, as the root's own dirs
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    return os.open(path, flags, LOCK_FILE_MODE)


def _try_lock(fd: int) -> bool:
    """Take the exclusive flock on ``fd`` without waiting: False if it is held elsewhere. (:mod:`fcntl`
    is imported where a lock is taken: the lock-free reuse path of ``ensure`` never loads it.)"""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _BUSY:
            return False
        raise
    return True


def _unlock(fd: int) -> None:
    """Drop the flock ``fd`` holds (taken by :func:`_try_lock`, so :mod:`fcntl` is loaded) and close it."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_lock(path: Path, timeout: float, *, busy_hint: str, clock: Clock = SYSTEM_CLOCK) -> Iterator[None]:
    """Hold the lock at ``path`` for the block, waiting up to ``timeout`` on ``clock``; busy is one
    clear error."""
    check_lock_path(path)
    fd = _open(path)
    try:
        deadline = clock.monotonic() + timeout
        while not _try_lock(fd):
            left = deadline - clock.monotonic()
            if left <= 0:
                raise SyncleaseError(f"the lock {path} is busy", hint=busy_hint)
            clock.sleep(min(POLL_SECONDS, left))
    except BaseException:
        os.close(fd)
        raise
    try:
        yield
    finally:
        _unlock(fd)


class HolderLock:
    """The per-instance lock a daemon holds for its whole life."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock now or raise :class:`LockBusy` (it never waits)."""
        check_lock_path(self.path)
        fd = _open(self.path)
        try:
            if not _try_lock(fd):
                raise LockBusy(f"the holder lock {self.path} is held")
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            _unlock(fd)


def probe_holder_lock(path: Path) -> bool | None:
    """True if nobody holds the lock at ``path`` (we took and dropped it), False if it is held,
    None if there is no such regular file of ours to check (never creates one, never follows a link)."""
    try:
        if not check_lock_path(path):
            return None
        fd = _open(path, create=False)
    except (BadInputError, OSError):
        return None
    try:
        taken: bool | None = _try_lock(fd)
    except OSError:
        taken = None
    if taken:
        _unlock(fd)
    else:
        os.close(fd)
    return taken
