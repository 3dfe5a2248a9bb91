"""Private files and directories: the one atomic write, the one defensive read, private dirs.

Writes: temp file in the same directory (0600, O_EXCL), write, fsync, ``os.replace``, fsync the directory.
A lease *renewal* may skip both fsyncs (``durable=False``): it is still atomic for every reader (the
rename), and losing it to a power cut loses nothing that matters (the lease names a process of a boot
that is over). Each fsync costs the daemon several context switches a heartbeat (ADR 0015).
Reads: never follow a symlink, refuse non-regular files, foreign owners, group/world access and
oversized files. Problems are :class:`UnsafeFileError` with a short machine ``reason``. Every JSON
record the project keeps is written and read here (SQLite opens its own database file after the same
checks; daemon logs are opened append-only without following a link, in :mod:`.spawn`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from synclease.core.errors import RootError
from synclease.core.record import record

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


class UnsafeFileError(Exception):
    """A file that exists but must not be trusted; ``reason`` is a short machine-readable tag."""

    def __init__(self, path: Path, reason: str, detail: str = "") -> None:
        super().__init__(f"{path}: {reason}{': ' + detail if detail else ''}")
        self.path = path
        self.reason = reason
        self.detail = detail


def _fsync_dir(directory: Path) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    fd = os.open(directory, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = PRIVATE_FILE_MODE, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old or the new content, never a mix:
    a temporary file in the same directory, written and fsynced, then renamed over ``path``.

    The data is always fsynced before the rename, so a crash leaves the old or the new whole file,
    never a torn or empty one. ``durable=False`` skips only the directory's fsync after the rename:
    the rename itself may then be lost to a power cut (the old whole file stays). A lease renewal
    uses it (ADR 0015): a renewal lost to a power cut belongs to a boot that is over."""
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(path.parent)


def check_private(path: Path, st: os.stat_result) -> None:
    """Raise :class:`UnsafeFileError` unless ``st`` is a regular file we own with no group/world bits."""
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFileError(path, "not_regular_file")
    if st.st_uid != os.geteuid():
        raise UnsafeFileError(path, "foreign_owner", f"owned by uid {st.st_uid}")
    if st.st_mode & 0o077:
        raise UnsafeFileError(path, "insecure_mode", f"mode {stat.S_IMODE(st.st_mode):o}")


@record
class PrivateHandle:
    """An open private regular file of ours: its path, descriptor and ``fstat`` at open."""

    path: Path
    fd: int
    st: os.stat_result


def open_private(path: Path, flags: int) -> PrivateHandle:
    """Open ``path`` with ``flags`` plus ``O_NOFOLLOW | O_NONBLOCK`` (created 0600 if ``O_CREAT``), then
    refuse anything but a private regular file of ours (:class:`UnsafeFileError`). FileNotFoundError
    and other OS errors propagate; the caller closes ``fd``."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise UnsafeFileError(path, "symlink") from None
        if exc.errno in (errno.EISDIR, errno.ENXIO, errno.ENODEV):  # directory, socket, device
            raise UnsafeFileError(path, "not_regular_file") from None
        raise
    try:
        st = os.fstat(fd)
        check_private(path, st)
    except BaseException:
        os.close(fd)
        raise
    return PrivateHandle(path, fd, st)


def read_private(path: Path, max_bytes: int) -> bytes:
    """Read a private file defensively. Raises FileNotFoundError or :class:`UnsafeFileError`."""
    try:
        handle = open_private(path, os.O_RDONLY)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnsafeFileError(path, "unreadable", exc.strerror or str(exc)) from None
    try:
        if handle.st.st_size > max_bytes:
            raise UnsafeFileError(path, "too_large", f"{handle.st.st_size} bytes > {max_bytes}")
        chunks: list[bytes] = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(handle.fd, min(remaining, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise UnsafeFileError(path, "too_large", f"more than {max_bytes} bytes")
        return data
    finally:
        os.close(handle.fd)


def remove_file(path: Path) -> bool:
    """Unlink ``path`` (never a directory, never following a link). True if it was removed."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def check_private_dir(path: Path, elsewhere: str = "set SYNCLEASE_HOME to a directory you own") -> bool:
    """Without creating anything: False if ``path`` does not exist; True if it is a private directory
    we own; :class:`~synclease.core.errors.RootError` for a symlink, a foreign owner or group/world
    write. ``elsewhere`` is the hint for a directory that cannot be used at all."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise RootError(f"cannot read {path}: {exc.strerror}", hint=elsewhere) from None
    if stat.S_ISLNK(st.st_mode):
        raise RootError(f"{path} is a symlink", hint=elsewhere)
    if not stat.S_ISDIR(st.st_mode):
        raise RootError(f"{path} is not a directory", hint=elsewhere)
    if st.st_uid != os.geteuid():
        raise RootError(f"{path} is owned by uid {st.st_uid}, not you", hint=elsewhere)
    if st.st_mode & 0o022:
        raise RootError(
            f"{path} is group/world-writable (mode {stat.S_IMODE(st.st_mode):o})",
            hint=f"run: chmod 700 {path}",
        )
    return True


def ensure_private_dir(
    path: Path, elsewhere: str = "set SYNCLEASE_HOME to a directory you own", parents: bool = True
) -> None:
    """Create ``path`` 0700 if missing; refuse a symlink, a foreign owner or group/world write bits."""
    if check_private_dir(path, elsewhere):
        return
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE, parents=parents, exist_ok=True)
    except OSError as exc:
        raise RootError(f"cannot create {path}: {exc.strerror}", hint=elsewhere) from None
    if not check_private_dir(path, elsewhere):
        raise RootError(f"{path} vanished while being created", hint="retry")
