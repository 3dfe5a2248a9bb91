"""What every command needs: settings, the prepared daemon root, the clock, our version."""

from __future__ import annotations

from dataclasses import dataclass

from synclease import package_version, settings
from synclease.clock import SYSTEM_CLOCK, Clock
from synclease.lease.store import LeaseStore
from synclease.root import DaemonRoot, open_root
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


def load() -> Context:
    return Context(settings.load(), open_root(), SYSTEM_CLOCK, package_version())
