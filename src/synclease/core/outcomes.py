"""What a sweep did, as typed values: ``swept``, ``skipped``, ``failed``, ``leases_removed``.

``doctor --reset --json`` prints them as ``reset_result`` (``to_json``); the shapes are in
``protocol/doctor-v2.schema.json``.
"""

from __future__ import annotations

from typing import Any

from synclease.core.escalate import CleanupPath
from synclease.core.fleet import CleanupClass, IdentityRecord, SkipReason
from synclease.core.record import as_json, field, record


class _Row:
    def to_json(self) -> dict[str, Any]:
        return as_json(self)


@record
class Swept(_Row):
    pid: int | None
    port: int
    instance_id: str | None
    package_version: str | None
    cleanup_path: CleanupPath
    #: ``expired_lease`` for a ``safe_auto`` daemon, else the skip reason that ``--force`` overrode.
    reason: str
    #: The daemon's own root when it is not the sweeping root's (None: this root).
    daemon_root: str | None = None


@record
class Skipped(_Row):
    pid: int | None
    port: int
    instance_id: str | None
    cleanup_class: CleanupClass
    skip_reason: SkipReason | None

    @classmethod
    def of(cls, record: IdentityRecord) -> Skipped:
        return cls(record.pid, record.port, record.instance_id, record.cleanup_class, record.skip_reason)


@record
class Failed(_Row):
    pid: int | None
    port: int
    instance_id: str | None
    failure_reason: str


@record
class LeaseRemoved(_Row):
    instance_id: str
    pid: int | None
    port: int | None
    reason: str


@record(frozen=False)
class SweepResult:
    swept: list[Swept] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    leases_removed: list[LeaseRemoved] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return as_json(self)
