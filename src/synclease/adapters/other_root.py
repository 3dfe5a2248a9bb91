"""Reading another daemon root of this user, read-only, for the survey (issue 20).

A listener's self-report names its root; this reads that root's singleton record and the leases of
the instances named, with the checks of our own root: every directory on the way a real directory of
ours without group/world write (no symlink anywhere in the path), every file through
:func:`~synclease.adapters.fsio.read_private` (no symlink, ours, 0600, size bound). Nothing is created,
no lock is taken or waited on, and a root that is missing, hostile, huge or half-written comes back as
a :class:`~synclease.core.roots.RootView` whose ``problem`` says which, never as an exception.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot, scope_id_for
from synclease.core.constants import SYNC
from synclease.core.lease import INSTANCE_ID_RE, LeaseEntry
from synclease.core.roots import RootView

#: File problems that make a root unsafe to judge (a record that merely does not decode is evidence).
UNSAFE = frozenset(
    {"symlink", "not_regular_file", "foreign_owner", "insecure_mode", "too_large", "unreadable"}
)
#: At most this many other roots are read in one survey; listeners of any further root are cross_root.
MAX_OTHER_ROOTS = 16


def _dir_problem(path: Path) -> str | None:
    """None for a private directory of ours; else why not (``missing`` when it is not there)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "unreadable"
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    if not stat.S_ISDIR(st.st_mode):
        return "not_directory"
    if st.st_uid != os.geteuid():
        return "foreign_owner"
    if st.st_mode & 0o022:
        return "insecure_mode"
    return None


def _root_problem(path: Path) -> str | None:
    if not path.is_absolute() or os.path.normpath(path) != str(path):
        return "not_absolute"
    if os.path.realpath(path) != str(path) and _dir_problem(path) is None:
        return "symlink"  # a link somewhere above the root itself
    return _dir_problem(path)


def ledger_writable(path: str) -> bool:
    """The other root and its ledger directory exist and are private directories of ours (an append
    there creates no directory; the ledger file itself is checked by the ledger store)."""
    root = Path(path)
    return _root_problem(root) is None and _dir_problem(DaemonRoot(root).ledger_dir) is None


def read_root(path: str, instance_ids: Iterable[str]) -> RootView:
    """What ``path`` holds for judging the listeners that named it (their ``instance_ids``)."""
    root = Path(path)
    problem = _root_problem(root)
    scope_id = scope_id_for(root) if problem != "not_absolute" else None
    if problem is not None:
        return RootView(path=path, scope_id=scope_id, problem=problem)
    store = LeaseStore(DaemonRoot(root), SYNC)
    single = store.read_singleton()
    if single.problem in UNSAFE or (single.record is None and single.problem not in (None, "missing")):
        return RootView(path=path, scope_id=scope_id, problem=f"singleton:{single.problem}")
    leases: list[LeaseEntry] = []
    for directory in (root / "leases", root.joinpath("leases", SYNC)):
        if (trouble := _dir_problem(directory)) not in (None, "missing"):
            return RootView(path=path, scope_id=scope_id, problem=f"leases:{trouble}")
    for instance_id in sorted(set(instance_ids)):
        if not INSTANCE_ID_RE.match(instance_id):
            continue
        entry = store.read(instance_id)
        if entry.problem in UNSAFE:
            return RootView(path=path, scope_id=scope_id, problem=f"lease:{entry.problem}")
        if entry.problem != "missing":
            leases.append(entry)
    return RootView(path=path, scope_id=scope_id, singleton=single.record, leases=tuple(leases))
