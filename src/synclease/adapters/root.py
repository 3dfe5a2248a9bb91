"""The daemon root: where leases, the singleton record, logs, the session, the queue and the ledger live.

``SYNCLEASE_HOME`` if set, else ``platformdirs.user_state_dir("synclease")``; no version in the path, so
one root serves every install. The *scope* of a daemon is its resolved root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from synclease.adapters.fsio import ensure_private_dir
from synclease.core.errors import RootError
from synclease.core.family import get_family
from synclease.core.record import record


def scope_id_for(resolved_root: Path) -> str:
    """A short, stable digest of a resolved root: two roots are two scopes."""
    import hashlib  # lazily: the CLI's reuse path never needs it

    return hashlib.sha256(str(resolved_root).encode()).hexdigest()[:16]


@record
class DaemonRoot:
    path: Path

    @property
    def scope_id(self) -> str:
        return scope_id_for(self.path)

    def leases_dir(self, family: str = "sync") -> Path:
        return self.path / get_family(family).lease_dir

    def lease_path(self, instance_id: str, family: str = "sync") -> Path:
        return self.leases_dir(family) / f"{instance_id}.json"

    def holder_lock_path(self, instance_id: str, family: str = "sync") -> Path:
        return self.leases_dir(family) / f"{instance_id}.lock"

    def singleton_path(self, family: str = "sync") -> Path:
        return self.path / f"{family}.singleton.json"

    def singleton_lock_path(self, family: str = "sync") -> Path:
        return self.path / f"{family}.singleton.lock"

    @property
    def log_dir(self) -> Path:
        return self.path / "logs"

    def log_path(self, instance_id: str) -> Path:
        return self.log_dir / f"daemon-{instance_id}.log"

    @property
    def session_path(self) -> Path:
        return self.path / "session.json"

    @property
    def queue_dir(self) -> Path:
        return self.path / "queue"

    @property
    def ledger_dir(self) -> Path:
        """Created by :meth:`prepare` (and by an append), never by a reader."""
        return self.path / "ledger"

    @property
    def ledger_path(self) -> Path:
        return self.ledger_dir / "sync.jsonl"

    @property
    def ledger_rotated_path(self) -> Path:
        return self.ledger_dir / "sync.jsonl.1"

    @property
    def ledger_lock_path(self) -> Path:
        return self.ledger_dir / "sync.jsonl.lock"

    def prepare(self) -> DaemonRoot:
        """Create the root and its sub-directories (0700), refusing unsafe ones. Returns self."""
        ensure_private_dir(self.path)
        subs = (self.path / "leases", self.leases_dir("sync"), self.log_dir, self.queue_dir, self.ledger_dir)
        for sub in subs:
            ensure_private_dir(sub)
        return self


def locate(env: Mapping[str, str] | None = None) -> DaemonRoot:
    """Resolve the root path (no I/O beyond resolving); :meth:`DaemonRoot.prepare` checks and creates."""
    env = os.environ if env is None else env
    raw = env.get("SYNCLEASE_HOME", "").strip()
    if raw:
        given = Path(raw).expanduser()
        if not given.is_absolute():
            raise RootError(
                f"SYNCLEASE_HOME={raw!r} is not an absolute path",
                hint="set it to an absolute directory path",
            )
    else:
        import platformdirs  # only when SYNCLEASE_HOME is unset: its import is not free

        given = Path(platformdirs.user_state_dir("synclease"))
    if given.is_symlink():
        raise RootError(f"daemon root {given} is a symlink", hint="point SYNCLEASE_HOME at a real directory")
    return DaemonRoot(given.resolve())


def open_root(env: Mapping[str, str] | None = None) -> DaemonRoot:
    return locate(env).prepare()
