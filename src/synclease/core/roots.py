"""Another daemon root of this user, as evidence: what was read of it (read-only) to judge a listener
whose self-report names it.

A daemon's self-report names its root (``daemon_root``) and scope (``scope_id``). For a listener of
another root, the survey reads that root's singleton record and the lease of the instance the listener
names, with the same safety checks as its own root (owner, permissions, no symlinks, size bounds) and
without taking a lock or creating anything (:mod:`synclease.adapters.other_root`). The classification
table then judges the listener by the same rows as one of its own root, against that root's records.
``problem`` says why a root could not be read safely; such a listener is ``cross_root``.
"""

from __future__ import annotations

from synclease.core.lease import LeaseEntry, SingletonRecord
from synclease.core.record import record

#: ``RootView.problem`` when the self-report names another scope but no root path at all.
ROOT_NOT_NAMED = "root_not_named"
#: ``RootView.problem`` when the survey did not read the named root (e.g. too many roots named).
ROOT_NOT_READ = "root_not_read"


@record(kw_only=True)
class RootView:
    """``path``: the root as the daemon named it; ``scope_id``: that path's scope (None when it is not
    a usable path). ``problem`` None: read safely, and ``singleton``/``leases`` are what it holds (the
    leases of the instances its listeners named, missing ones left out)."""

    path: str
    scope_id: str | None
    problem: str | None = None
    singleton: SingletonRecord | None = None
    leases: tuple[LeaseEntry, ...] = ()
