"""What every command and API call needs: settings, the daemon root, the clock, our version, and
who is asking (the ledger's ``by``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from synclease.adapters import environment
from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.fsio import check_private_dir
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot, locate, open_root
from synclease.core.actor import Actor
from synclease.core.clock import Clock
from synclease.core.record import record
from synclease.core.settings import Settings


@record
class Context:
    settings: Settings
    root: DaemonRoot
    clock: Clock
    version: str

    @property
    def store(self) -> LeaseStore:
        return LeaseStore(self.root)


def actor(command: str) -> Actor:
    """This CLI process, as the ``by`` of the events it causes (``command``: e.g. ``"sync start"``)."""
    return Actor(os.getpid(), command)


def load(create: bool = True, env: Mapping[str, str] | None = None) -> Context:
    """Settings, root, clock, version, from ``env`` (default: this process's environment).
    ``create=False`` (read-only commands) checks an existing root but never creates one."""
    environment.check_platform()
    settings = environment.settings(env)
    if create:
        root = open_root(env)
    else:
        root = locate(env)
        check_private_dir(root.path)
    return Context(settings, root, SYSTEM_CLOCK, environment.package_version(env))
