"""``sync move-aside``: set an unusable queue database (and its -wal/-shm/-journal) aside, so the next
``sync push`` or ``sync start`` creates a fresh one, and the old files stay for recovery.

Only a queue database of this root (``<root>/queue/<16 hex>.sqlite3``) is moved, and only when a
read-only look proves it unusable: a healthy (or merely busy) queue is never moved.
"""

from __future__ import annotations

import re
from pathlib import Path

from synclease.adapters.queue import queue_path
from synclease.adapters.queue_inspect import inspect_queue
from synclease.adapters.root import DaemonRoot
from synclease.adapters.set_aside import set_aside
from synclease.core.clock import Clock
from synclease.core.errors import BadInputError, SyncleaseError
from synclease.core.queue_state import QueueKind
from synclease.core.record import record

_QUEUE_NAME = re.compile(r"[0-9a-f]{16}\.sqlite3")
COMPANIONS = ("-wal", "-shm", "-journal")


@record
class MovedAside:
    path: Path
    queue: QueueKind
    problem: str
    moved: list[tuple[Path, Path]]


def _queue_file(root: DaemonRoot, given: str) -> Path:
    path = Path(given).expanduser().absolute()
    try:
        in_root = path.parent.resolve(strict=True) == root.queue_dir.resolve(strict=True)
    except OSError:
        in_root = False
    if not in_root or not _QUEUE_NAME.fullmatch(path.name):
        raise BadInputError(
            f"{given} is not a queue database of this root",
            hint=f"give a {root.queue_dir}/<digest>.sqlite3 path named by `synclease auth doctor`",
        )
    return root.queue_dir / path.name


def move_aside(root: DaemonRoot, given: str, clock: Clock) -> MovedAside:
    path = _queue_file(root, given)
    kind: QueueKind = "local" if path == queue_path(root, None) else "scope"
    found = inspect_queue(path, kind)
    if found is None:
        raise BadInputError(f"there is no queue database at {path}", hint="run: synclease auth doctor")
    problem = found.facts.problem
    if found.facts.counts is not None or problem is None:
        raise SyncleaseError(f"the queue database {path} is usable; it was not moved")
    if problem == "busy":
        raise SyncleaseError(f"the queue database {path} is busy; it was not moved", hint="try again")
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    try:
        moved = set_aside(path, stamp, COMPANIONS)
    except OSError as exc:
        raise SyncleaseError(f"could not move {path} aside: {exc.strerror or exc}") from None
    return MovedAside(path, kind, problem, moved)
