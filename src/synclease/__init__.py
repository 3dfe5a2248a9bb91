"""synclease: background sync daemons that hold heartbeat leases and are reaped only on proof.

The public API (docs/api.md) is the names in ``__all__``. They load on first use, so ``import
synclease`` costs nothing, ``from synclease import ensure`` loads what ``ensure`` needs, and the CLI
(which imports this package first) pays for none of it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from synclease._version import __version__

if TYPE_CHECKING:
    from synclease.api import enqueue, enqueue_many, ensure, reset, serve, survey
    from synclease.core.errors import (
        AlreadyRunningError,
        BadInputError,
        DaemonStartError,
        RootError,
        SyncleaseError,
        UnsupportedPlatformError,
    )
    from synclease.core.family import Family, FamilyError, declare_family
    from synclease.core.fleet import CleanupClass, IdentityRecord, SkipReason, Survey
    from synclease.core.outcomes import Failed, LeaseRemoved, Skipped, SweepResult, Swept
    from synclease.services.push import Pushed
    from synclease.services.reset import ResetResult
    from synclease.services.reuse import EnsureResult

#: Each public name and the module it lives in.
_HOMES = {
    "ensure": "synclease.api",
    "enqueue": "synclease.api",
    "enqueue_many": "synclease.api",
    "survey": "synclease.api",
    "reset": "synclease.api",
    "serve": "synclease.api",
    "declare_family": "synclease.core.family",
    "Family": "synclease.core.family",
    "FamilyError": "synclease.core.family",
    "EnsureResult": "synclease.services.reuse",
    "Pushed": "synclease.services.push",
    "ResetResult": "synclease.services.reset",
    "Survey": "synclease.core.fleet",
    "IdentityRecord": "synclease.core.fleet",
    "CleanupClass": "synclease.core.fleet",
    "SkipReason": "synclease.core.fleet",
    "SweepResult": "synclease.core.outcomes",
    "Swept": "synclease.core.outcomes",
    "Skipped": "synclease.core.outcomes",
    "Failed": "synclease.core.outcomes",
    "LeaseRemoved": "synclease.core.outcomes",
    "SyncleaseError": "synclease.core.errors",
    "BadInputError": "synclease.core.errors",
    "RootError": "synclease.core.errors",
    "AlreadyRunningError": "synclease.core.errors",
    "DaemonStartError": "synclease.core.errors",
    "UnsupportedPlatformError": "synclease.core.errors",
}

__all__ = [
    "AlreadyRunningError",
    "BadInputError",
    "CleanupClass",
    "DaemonStartError",
    "EnsureResult",
    "Failed",
    "Family",
    "FamilyError",
    "IdentityRecord",
    "LeaseRemoved",
    "Pushed",
    "ResetResult",
    "RootError",
    "SkipReason",
    "Skipped",
    "Survey",
    "SweepResult",
    "Swept",
    "SyncleaseError",
    "UnsupportedPlatformError",
    "__version__",
    "declare_family",
    "enqueue",
    "enqueue_many",
    "ensure",
    "reset",
    "serve",
    "survey",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'synclease' has no attribute {name!r}")
    __import__(home)  # not importlib.import_module: importing importlib (and warnings) costs ensure's import
    value = getattr(sys.modules[home], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
