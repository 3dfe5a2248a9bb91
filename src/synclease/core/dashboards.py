"""Which dashboards a dashboard start may clean: only stale dashboards of *this* project.

A listener in ``[9237, 9337)`` is a target only when all of this holds (:func:`judge`, first match
wins): its ``/api/health`` says ``daemon_family: "dashboard"`` and names this same resolved project; it
is not the recorded dashboard (by PID or port); the OS listener table knows its PID; and the
self-report's pid, port and process start time agree with the OS. Everything else in range (sync
daemons, other projects' dashboards, third-party programs, raw TCP listeners, silent or lying
listeners) is never touched.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from synclease.core.constants import DASHBOARD_PORT_RANGE
from synclease.core.dashboard_record import FAMILY, DashboardRecord
from synclease.core.escalate import Outcome
from synclease.core.evidence import listener_mismatches
from synclease.core.fleet import Observation
from synclease.core.identity import StartStamp
from synclease.core.record import field, record


class DashboardVerdict(enum.StrEnum):
    TARGET = "target"
    OUT_OF_RANGE = "out_of_range"
    NO_SELF_REPORT = "no_self_report"
    OTHER_FAMILY = "other_family"
    OTHER_PROJECT = "other_project"
    RECORDED_DASHBOARD = "recorded_dashboard"
    MISSING_PID = "missing_pid"
    IDENTITY_MISMATCH = "identity_mismatch"
    SELF = "self"

    @property
    def same_project(self) -> bool:
        """Verdicts reached only for a dashboard that claims this very project."""
        return self in (
            DashboardVerdict.TARGET,
            DashboardVerdict.RECORDED_DASHBOARD,
            DashboardVerdict.MISSING_PID,
            DashboardVerdict.IDENTITY_MISMATCH,
            DashboardVerdict.SELF,
        )


def judge(obs: Observation, project: str, recorded: DashboardRecord | None, own_pid: int) -> DashboardVerdict:
    """Pure; first match wins. Only :attr:`DashboardVerdict.TARGET` may be signalled."""
    listener, health = obs.listener, obs.health
    if obs.port not in DASHBOARD_PORT_RANGE:
        return DashboardVerdict.OUT_OF_RANGE
    if health is None:
        return DashboardVerdict.NO_SELF_REPORT
    if health.family != FAMILY:
        return DashboardVerdict.OTHER_FAMILY
    if health.project != project:
        return DashboardVerdict.OTHER_PROJECT
    if recorded is not None and (recorded.port == obs.port or recorded.pid in (listener.pid, health.pid)):
        return DashboardVerdict.RECORDED_DASHBOARD
    if listener.pid is None:
        return DashboardVerdict.MISSING_PID
    if listener_mismatches(health.pid, health.port, health.start, listener):
        return DashboardVerdict.IDENTITY_MISMATCH
    if listener.pid == own_pid:
        return DashboardVerdict.SELF
    return DashboardVerdict.TARGET


@record
class Judged:
    port: int
    pid: int | None
    verdict: DashboardVerdict
    start_time: StartStamp | None = None

    def to_json(self) -> dict[str, Any]:
        return {"port": self.port, "pid": self.pid, "reason": self.verdict.value}


@record
class CleanupResult:
    swept: tuple[Outcome, ...] = ()
    failed: tuple[Outcome, ...] = ()
    skipped: tuple[Judged, ...] = ()  # unrecorded same-project dashboards whose identity is unproven
    scan_error: str | None = None
    ignored_ports: tuple[int, ...] = field(default=())  # everything else that listened in range

    def to_json(self) -> dict[str, Any]:
        return {
            "swept": [
                {"pid": o.target.pid, "port": o.target.port, "cleanup_path": o.path.value if o.path else None}
                for o in self.swept
            ],
            "failed": [
                {"pid": o.target.pid, "port": o.target.port, "failure_reason": o.failure} for o in self.failed
            ],
            "skipped": [j.to_json() for j in self.skipped],
            "listener_table_error": self.scan_error,
        }


def judge_all(
    observations: Sequence[Observation], project: str, recorded: DashboardRecord | None, own_pid: int
) -> list[Judged]:
    return [
        Judged(obs.port, obs.listener.pid, judge(obs, project, recorded, own_pid), obs.listener.start)
        for obs in observations
    ]
