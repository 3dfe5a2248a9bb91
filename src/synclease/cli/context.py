"""What every command needs: settings, the prepared daemon root, the clock, our version."""

from __future__ import annotations

from dataclasses import dataclass

from synclease import package_version, settings
from synclease.clock import SYSTEM_CLOCK, Clock
from synclease.fsio import check_private_dir
from synclease.lease.store import LeaseStore
from synclease.root import DaemonRoot, locate, open_root
from synclease.settings import Settings


@dataclass(frozen=True)
class Context:
    settings: Settings
    root: DaemonRoot
    clock: Clock
    version: str

    @property
    def store(self) -> LeaseStore:
        return LeaseStore(self.root)


def load(create: bool = True) -> Context:
    """Settings, root, clock, version. ``create=False`` (read-only commands) checks an existing root
    but never creates one."""
    if create:
        return Context(settings.load(), open_root(), SYSTEM_CLOCK, package_version())
    root = locate()
    check_private_dir(root.path)
    return Context(settings.load(), root, SYSTEM_CLOCK, package_version())
