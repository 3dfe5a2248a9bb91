"""The project side of the dashboard family: the project directory, ``.kittify/``, the record file and
the per-project lock. Written atomically 0600, read defensively (no symlink, no foreign owner, no
group/world bits, bounded size); a record that cannot be trusted comes back as a problem tag.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from synclease.adapters.fsio import (
    UnsafeFileError,
    atomic_write,
    ensure_private_dir,
    read_private,
    remove_file,
)
from synclease.adapters.locks import file_lock
from synclease.core.codec import CodecError
from synclease.core.dashboard_record import (
    MAX_DASHBOARD_RECORD_BYTES,
    DashboardRecord,
    RecordEntry,
    decode,
    encode,
    kittify_dir,
    lock_path,
    record_path,
)
from synclease.core.errors import BadInputError

PROJECT_LOCK_TIMEOUT_SECONDS = 30.0


def resolve_project(raw: str | os.PathLike[str] | None) -> Path:
    """The resolved project directory (default: the current directory); it must exist."""
    given = Path.cwd() if raw is None else Path(raw).expanduser()
    try:
        resolved = given.resolve(strict=True)
    except (OSError, RuntimeError):
        raise BadInputError(
            f"project directory {str(given)!r} does not exist", hint="pass --project DIR with an existing dir"
        ) from None
    if not resolved.is_dir():
        raise BadInputError(f"project path {str(given)!r} is not a directory", hint="pass --project DIR")
    return resolved


def prepare_kittify(project: Path) -> Path:
    """Create ``<project>/.kittify`` (0700) if missing; refuse a symlink, a non-directory, a foreign
    owner, or group/world write bits (anyone else could then replace our record)."""
    path = kittify_dir(project)
    ensure_private_dir(path, "use a project directory you own, with a real .kittify directory", parents=False)
    return path


def read(project: Path) -> RecordEntry:
    """Read ``<project>/.kittify/.dashboard``; never raises for what is (or is not) there."""
    path = record_path(project)
    try:
        data = read_private(path, MAX_DASHBOARD_RECORD_BYTES)
    except FileNotFoundError:
        return RecordEntry(path, None, "missing")
    except UnsafeFileError as exc:
        return RecordEntry(path, None, exc.reason, exc.detail)
    try:
        record = decode(data)
    except CodecError as exc:
        return RecordEntry(path, None, exc.reason, exc.detail)
    if record.project != str(project):
        return RecordEntry(path, None, "project_mismatch", record.project[:200])
    return RecordEntry(path, record)


def write(project: Path, record: DashboardRecord) -> None:
    atomic_write(record_path(project), encode(record))


def remove_if_own(project: Path, mine: DashboardRecord) -> bool:
    """Remove the record only if it still describes ``mine``. True if it was removed.

    Read-compare-unlink is not atomic: a new dashboard writing its record in that instant loses it.
    That heals itself: the next start finds no record, spawns one and its cleanup retires the
    unrecorded dashboard of the same project.
    """
    current = read(project).record
    if current is None or not current.is_same(mine):
        return False
    return remove_file(record_path(project))


@contextlib.contextmanager
def project_lock(project: Path) -> Iterator[None]:
    """Hold the project's dashboard lock: start and stop never run twice at once for one project."""
    with file_lock(
        lock_path(project),
        PROJECT_LOCK_TIMEOUT_SECONDS,
        busy_hint="another `synclease dashboard` command runs for this project; retry shortly",
    ):
        yield
