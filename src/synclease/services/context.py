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
from synclease.core.constants import SYNC
from synclease.core.family import get_family
from synclease.core.record import record
from synclease.core.settings import Settings
from synclease.services.families import load_declared


@record
class Context:
    settings: Settings
    root: DaemonRoot
    clock: Clock
    version: str

    @property
    def store(self) -> LeaseStore:
        return LeaseStore(self.root)

    def governed(self, family: str = SYNC) -> tuple[LeaseStore, range]:
        """The lease store and the ports to survey for a declared ``family``: the sync family's
        ports are the settings' (``SYNCLEASE_PORT_RANGE``), any other family's its whole range."""
        declared = get_family(family)
        ports = self.settings.port_range if declared.name == SYNC else declared.port_range
        return LeaseStore(self.root, declared.name), ports


def actor(command: str) -> Actor:
    """This CLI process, as the ``by`` of the events it causes (``command``: e.g. ``"sync start"``)."""
    return Actor(os.getpid(), command)


def load(create: bool = True, env: Mapping[str, str] | None = None) -> Context:
    """Settings, root, clock, version, from ``env`` (default: this process's environment).
    ``create=False`` (read-only commands) checks an existing root but never creates one."""
    environment.check_platform()
    settings = environment.settings(env)
    load_declared(os.environ if env is None else env)
    if create:
        root = open_root(env)
    else:
        root = locate(env)
        check_private_dir(root.path)
    return Context(settings, root, SYSTEM_CLOCK, environment.package_version(env))
