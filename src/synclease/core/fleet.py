"""Value types of the fleet: what was observed on a port, the context we judge it in, and the verdicts.

Everything here is a frozen record (:mod:`synclease.core.record`) or a ``StrEnum``. Paths are values
here, never opened.
``to_json`` renders a record for ``doctor --json``: enums as their values, datetimes as ISO 8601 UTC
with a ``Z`` suffix.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from synclease.core.family import SYNC_FAMILY, Family
from synclease.core.health import HealthReport
from synclease.core.identity import HolderVerdict, ProcessFacts, StartOf, StartStamp
from synclease.core.lease import LeaseEntry, SingletonRecord, is_expired
from synclease.core.reasons import LedgerReason
from synclease.core.record import as_json, record
from synclease.core.roots import RootView


class CleanupClass(enum.StrEnum):
    SAFE_AUTO = "safe_auto"
    OPERATOR_REQUIRED = "operator_required"
    NEVER_TOUCH = "never_touch"


class SkipReason(enum.StrEnum):
    """Why a listener is not ``safe_auto``: one value per row 1-10 of the classification table, and the
    three reasons a sweep leaves a chosen candidate alone at the last moment (see ``services.sweep``)."""

    OUT_OF_RANGE = "out_of_range"
    OTHER_FAMILY = "other_family"
    THIRD_PARTY = "third_party"
    RECORDED_SINGLETON = "recorded_singleton"
    OTHER_PID_NAMESPACE = "other_pid_namespace"
    OTHER_UID = "other_uid"
    # The operator_required rows: ``--force`` may override them, and the ledger records which.
    MISSING_PID = LedgerReason.MISSING_PID.value
    CROSS_ROOT = LedgerReason.CROSS_ROOT.value
    NO_LEASE = LedgerReason.NO_LEASE.value
    UNRESPONSIVE = LedgerReason.UNRESPONSIVE.value
    IDENTITY_MISMATCH = LedgerReason.IDENTITY_MISMATCH.value
    LEASE_LIVE = LedgerReason.LEASE_LIVE.value
    # Not rows of the table: why a sweep stopped short of a step, right before taking it.
    LEASE_RENEWED = "lease_renewed"
    WORK_IN_FLIGHT = "work_in_flight"
    NOT_OURS = "not_ours"


#: The reasons a sweep leaves a chosen candidate alone at the last moment (never a row of the table).
SWEEP_VETOES = frozenset({SkipReason.LEASE_RENEWED, SkipReason.WORK_IN_FLIGHT, SkipReason.NOT_OURS})


class LeaseStatus(enum.StrEnum):
    LIVE = "live"
    EXPIRED = "expired"
    MISSING = "missing"
    UNREADABLE = "unreadable"


def lease_status(entry: LeaseEntry | None, now: datetime) -> LeaseStatus:
    """The one reading of a lease file's standing: missing, unreadable (not trusted), or expired or
    live by the protocol's expiry rule (:func:`~synclease.core.lease.is_expired`)."""
    if entry is None:
        return LeaseStatus.MISSING
    if entry.lease is None:
        return LeaseStatus.UNREADABLE
    return LeaseStatus.EXPIRED if is_expired(entry.lease, now) else LeaseStatus.LIVE


class IdentitySource(enum.StrEnum):
    """Where a record's descriptive fields (instance_id, versions, scope, ...) were taken from."""

    SELF_REPORT = "self_report"
    LEASE = "lease"
    LISTENER = "listener"


class LeaseVerdictReason(enum.StrEnum):
    """Why a lease is (or is not) stale; the two stale ones are recorded when the lease is removed."""

    HOLDER_DEAD = LedgerReason.HOLDER_DEAD.value
    PID_REUSED = LedgerReason.PID_REUSED.value
    HOLDER_ALIVE = "holder_alive"
    HOLDER_UNKNOWN = "holder_unknown"
    UNREADABLE = "unreadable"


@record
class Listener:
    """What the OS listener table says of a port: ``pid`` None when unknown (AccessDenied, another
    user's socket, or ambiguous); ``pid_start_time`` None when the process could not be read."""

    port: int
    pid: int | None = None
    pid_start_time: float | None = None
    pid_start_ticks: int | None = None
    boot_id: str | None = None
    #: The listener process's effective uid (None when unknown).
    uid: int | None = None

    start = StartOf[StartStamp | None]("pid_start_time", "pid_start_ticks")


@record
class Observation:
    """One port with a listener: the OS facts and the health probe's outcome (report or error)."""

    listener: Listener
    health: HealthReport | None = None
    health_error: str | None = None
    #: What the OS here says of the PID the self-report names, when the listener table shows no owner
    #: (None: not looked up). Tells a daemon in another PID namespace from one we may not inspect.
    reported_process: ProcessFacts | None = None

    @property
    def port(self) -> int:
        return self.listener.port


@record(kw_only=True)
class FleetContext:
    """Everything besides the observation that a classification depends on.

    ``family`` is the family being governed (its lease directory, its name in self-reports);
    ``port_range`` is its range or a sub-range of it (test matrices); never wider. ``roots``: the other
    roots that listeners' self-reports named, as read (:mod:`synclease.core.roots`). ``uid``: our
    effective uid (None: unknown, and no listener is judged by its uid).
    """

    scope_id: str
    daemon_root: str
    now: datetime
    leases: Sequence[LeaseEntry] = ()
    singleton: SingletonRecord | None = None
    port_range: range = SYNC_FAMILY.port_range
    family: Family = SYNC_FAMILY
    roots: Sequence[RootView] = ()
    uid: int | None = None

    def root(self, path: str | None) -> RootView | None:
        """The other root read at ``path``, if the survey read it."""
        return next((view for view in self.roots if view.path == path), None)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("FleetContext.now must be an aware datetime")
        self.family.check_range(self.port_range)


@record(kw_only=True)
class IdentityRecord:
    """The classification of one listener: who it is, from which evidence, and what may be done.

    ``pid`` and ``process_start_time`` are the OS listener's (what a cleanup would signal, after
    re-checking them); the descriptive fields come from ``identity_source``. ``skip_reason`` is None
    iff ``cleanup_class`` is ``safe_auto``. ``mismatches`` names the fields on which self-report,
    lease and OS disagreed (``identity_mismatch``), e.g. ``"pid"`` or ``"process_start_time"``.
    """

    port: int
    pid: int | None
    process_start_time: float | None
    daemon_family: str | None
    instance_id: str | None
    protocol_version: int | None
    package_version: str | None
    scope_id: str | None
    daemon_root: str | None
    queue_db_path: str | None
    auth_scope: str | None
    server_url: str | None
    lease_present: bool
    lease_state: LeaseStatus
    lease_renewed_at: datetime | None
    lease_expires_at: datetime | None
    lease_problem: str | None
    identity_source: IdentitySource
    self_report_matches_lease: bool | None
    self_report_matches_listener: bool | None
    is_recorded_singleton: bool
    health_error: str | None
    mismatches: tuple[str, ...] = ()
    cleanup_class: CleanupClass
    skip_reason: SkipReason | None
    #: Linux: the listener's start in clock ticks since boot, and the boot id (exact across clock steps).
    process_start_ticks: int | None = None
    boot_id: str | None = None
    #: Whether its live self-report says a batch is being uploaded right now.
    work_in_flight: bool = False
    #: The other daemon root the listener belongs to (its self-report named it), judged against that
    #: root's records; None: this root. ``root_problem``: why that root could not be read safely.
    other_root: str | None = None
    root_problem: str | None = None

    start = StartOf[StartStamp | None]("process_start_time", "process_start_ticks")

    @property
    def our_singleton(self) -> bool:
        """The recorded singleton of this root (another root's is never_touch, and not ours)."""
        return self.is_recorded_singleton and self.other_root is None

    def __post_init__(self) -> None:
        if (self.skip_reason is None) != (self.cleanup_class is CleanupClass.SAFE_AUTO):
            raise ValueError("skip_reason must be None exactly when cleanup_class is safe_auto")

    def to_json(self) -> dict[str, Any]:
        return as_json(self)


@record(kw_only=True)
class StaleLease:
    """The verdict on a lease record that no listener answers for.

    ``stale`` True: the holder is provably gone (dead, or its PID now belongs to another process), so
    the lease file may be deleted, and no process is ever signalled for it. Otherwise it is kept and
    ``reason`` says why.
    """

    instance_id: str
    path: Path
    port: int | None
    pid: int | None
    lease_state: LeaseStatus
    holder: HolderVerdict | None
    stale: bool
    reason: LeaseVerdictReason
    port_in_use: bool = False
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return as_json(self)


@record
class ScanResult:
    """Every port with a listener, in port order, and what the scan cost."""

    observations: tuple[Observation, ...]
    ports_scanned: int
    duration_ms: float
    listener_table_error: str | None = None

    def timings(self) -> dict[str, Any]:
        return {"ports_scanned": self.ports_scanned, "duration_ms": round(self.duration_ms, 3)}


@record
class Survey:
    """One scan of the family range plus this root's leases, classified."""

    ctx: FleetContext
    scan: ScanResult
    records: tuple[IdentityRecord, ...]
    lease_verdicts: tuple[StaleLease, ...]

    @property
    def singleton(self) -> IdentityRecord | None:
        return next((r for r in self.records if r.our_singleton), None)

    @property
    def orphans(self) -> list[IdentityRecord]:
        """Every sync-family candidate that is not the singleton."""
        return [
            r for r in self.records if not r.our_singleton and r.cleanup_class is not CleanupClass.NEVER_TOUCH
        ]

    @property
    def ignored(self) -> list[IdentityRecord]:
        return [
            r for r in self.records if not r.our_singleton and r.cleanup_class is CleanupClass.NEVER_TOUCH
        ]

    def lease_entry(self, instance_id: str | None) -> LeaseEntry | None:
        """The lease file of ``instance_id``: this root's, else one read from another root."""
        others = (entry for view in self.ctx.roots for entry in view.leases)
        mine = (e for e in self.ctx.leases if e.instance_id == instance_id)
        return next(mine, None) or next((e for e in others if e.instance_id == instance_id), None)
