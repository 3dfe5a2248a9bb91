"""Move a file aside (never deleting it, never replacing another file): a damaged database and its
SQLite companions, renamed together so they can still be opened and recovered side by side."""

from __future__ import annotations

import errno
import os
from pathlib import Path

#: Tried names per move before giving up (``NAME.unusable-STAMP``, ``-1``, ``-2``, ...).
MAX_NAME_TRIES = 100


class SetAsideError(OSError):
    """No free name was found, or the file system refused the rename."""


def _taken(base: Path, suffixes: tuple[str, ...]) -> bool:
    return any(os.path.lexists(base.with_name(base.name + s)) for s in ("", *suffixes))


def _move(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` only if ``dst`` does not exist (a link then an unlink; a plain rename
    where the file system has no hard links). Never follows a symlink: a link itself is moved."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "target exists", str(dst)) from None
        os.rename(src, dst)
        return
    os.unlink(src)


def set_aside(path: Path, stamp: str, companions: tuple[str, ...]) -> list[tuple[Path, Path]]:
    """Rename ``path`` to ``path.unusable-<stamp>`` (``-N`` added until no name of the set is taken),
    and each existing ``path + suffix`` of ``companions`` to the same new name + suffix. Companions go
    first, the database last: a database left in place never loses its WAL to a fresh file. Returns
    ``(from, to)`` pairs in the order they were moved."""
    for n in range(MAX_NAME_TRIES):
        base = path.with_name(f"{path.name}.unusable-{stamp}" + (f"-{n}" if n else ""))
        if not _taken(base, companions):
            break
    else:
        raise SetAsideError(errno.EEXIST, f"no free name beside {path}")
    moved: list[tuple[Path, Path]] = []
    for suffix in (*companions, ""):
        src = path.with_name(path.name + suffix)
        if not os.path.lexists(src):
            continue
        dst = base.with_name(base.name + suffix)
        _move(src, dst)
        moved.append((src, dst))
    return moved
