"""The reuse decision of ``ensure``: the live singleton, if this install may use it. Lock-free and light
(two small file reads and one ``GET /api/health``): it is what every host CLI command pays, and what
:mod:`synclease.services.spawning` asks again under the singleton lock."""

from __future__ import annotations

from synclease.adapters import procfs
from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.adapters.session_store import current_session
from synclease.core.clock import Clock
from synclease.core.lease import LeaseRecord
from synclease.core.record import as_json, record, replace
from synclease.core.versions import is_older, protocol_compatible
from synclease.services.singleton import SingletonView, live_singleton


@record
class EnsureResult:
    """``pid`` is the daemon's PID as seen from this process: None when its process is not visible
    here (it serves from another PID namespace); then, or when it differs from the PID the daemon
    reports, ``reported_pid`` is the reported one and ``pid_note`` says why (ADR 0017)."""

    pid: int | None
    port: int
    instance_id: str
    package_version: str
    reused: bool
    superseded: str | None = None  # instance id of the singleton we replaced, if any
    reported_pid: int | None = None
    pid_note: str | None = None

    def to_json(self) -> dict[str, object]:
        omit = ("superseded",) if self.pid_note is not None else ("superseded", "reported_pid", "pid_note")
        return as_json(self, omit=omit)


OTHER_NAMESPACE = "the daemon serves from another PID namespace (e.g. a container)"


def seen_here(lease: LeaseRecord) -> EnsureResult:
    """The reused singleton, its PID as seen from here: the lease holds the PID the daemon sees itself
    by, which in another PID namespace names another process here, or none."""
    result = EnsureResult(lease.pid, lease.port, lease.instance_id, lease.package_version, True)
    if procfs.same_process_here(lease.pid, lease.start) is not False:
        return result  # it is that process (or this platform cannot tell, as before)
    here = procfs.pid_here(lease.pid, lease.start)
    why = f"its pid here is {here}" if here is not None else "its process is not visible here"
    return replace(
        result,
        pid=here,
        reported_pid=lease.pid,
        pid_note=f"{OTHER_NAMESPACE}: it reports pid {lease.pid}; {why}",
    )


def reusable(view: SingletonView, our_version: str, session_id: str | None) -> bool:
    """Reuse a singleton that speaks our protocol, is not older than us (newer wins) and holds the
    current login (a new login, even in the same scope, needs a daemon holding the new token)."""
    if view.health.session_id != session_id:
        return False
    return protocol_compatible(view.lease.protocol_version) and not is_older(
        view.package_version, our_version
    )


def session_id(root: DaemonRoot) -> str | None:
    session = current_session(root)
    return session.session_id if session else None


def reuse(store: LeaseStore, version: str, clock: Clock = SYSTEM_CLOCK) -> EnsureResult | None:
    """The live singleton, if it may be reused; lock-free."""
    view = live_singleton(store, clock)
    if view is None or not reusable(view, version, session_id(store.root)):
        return None
    return replace(seen_here(view.lease), package_version=view.package_version)
