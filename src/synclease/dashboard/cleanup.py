"""Dashboard start cleanup: retire stale dashboards of *this* project, and nothing else.

A listener in ``[9237, 9337)`` is a target only when all of this holds (:func:`judge`, pure):
its ``/api/health`` says ``daemon_family: "dashboard"`` and names this same resolved project; it is not
the recorded dashboard (by PID or port); the OS listener table knows its PID; and the self-report's
pid, port and process start time agree with the OS. Everything else in range (sync daemons, other
projects' dashboards, third-party programs, raw TCP listeners, silent or lying listeners) is never
touched. Targets go through the shared escalation ladder (:func:`synclease.fleet.escalate.escalate`)
with the dashboard range, which re-checks the OS identity before each signal. Nothing here ever scans
or signals a sync port: the scan is :func:`synclease.fleet.probe.scan` with ``family="dashboard"``.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synclease.constants import DASHBOARD_PORT_RANGE
from synclease.dashboard.record import FAMILY, DashboardRecord
from synclease.fleet import probe
from synclease.fleet.escalate import Ops, Outcome, Target, escalate
from synclease.fleet.model import Observation
from synclease.fleet.osops import RealOps
from synclease.lease.holder import same_start

CLEANUP_STEP_SECONDS = 1.0
MAX_PARALLEL = 16


class Verdict(enum.StrEnum):
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
            Verdict.TARGET,
            Verdict.RECORDED_DASHBOARD,
            Verdict.MISSING_PID,
            Verdict.IDENTITY_MISMATCH,
            Verdict.SELF,
        )


def judge(obs: Observation, project: str, recorded: DashboardRecord | None, own_pid: int) -> Verdict:
    """Pure; first match wins. Only :attr:`Verdict.TARGET` may be signalled."""
    listener, health = obs.listener, obs.health
    if obs.port not in DASHBOARD_PORT_RANGE:
        return Verdict.OUT_OF_RANGE
    if health is None:
        return Verdict.NO_SELF_REPORT
    if health.family != FAMILY:
        return Verdict.OTHER_FAMILY
    if health.project != project:
        return Verdict.OTHER_PROJECT
    if recorded is not None and (recorded.port == obs.port or recorded.pid in (listener.pid, health.pid)):
        return Verdict.RECORDED_DASHBOARD
    if listener.pid is None:
        return Verdict.MISSING_PID
    if (
        health.pid != listener.pid
        or health.port != obs.port
        or health.process_start_time is None
        or not same_start(health.process_start_time, listener.pid_start_time)
    ):
        return Verdict.IDENTITY_MISMATCH
    if listener.pid == own_pid:
        return Verdict.SELF
    return Verdict.TARGET


@dataclass(frozen=True)
class Judged:
    port: int
    pid: int | None
    verdict: Verdict
    start_time: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"port": self.port, "pid": self.pid, "reason": self.verdict.value}


@dataclass(frozen=True)
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
        Judged(
            obs.port, obs.listener.pid, judge(obs, project, recorded, own_pid), obs.listener.pid_start_time
        )
        for obs in observations
    ]


def cleanup(
    project: Path,
    recorded: DashboardRecord | None,
    *,
    ops: Ops | None = None,
    scan: Callable[[], probe.ScanResult] | None = None,
    step_timeout: float = CLEANUP_STEP_SECONDS,
) -> CleanupResult:
    """Scan the dashboard range once, judge every listener, escalate the proven targets in parallel."""
    result = scan() if scan is not None else probe.scan(DASHBOARD_PORT_RANGE, family="dashboard")
    judged = judge_all(result.observations, str(project), recorded, os.getpid())
    targets = [
        Target(j.pid, j.port, j.start_time, None, None)
        for j in judged
        if j.verdict is Verdict.TARGET and j.pid is not None and j.start_time is not None
    ]
    chosen_ops: Ops = ops if ops is not None else RealOps()
    outcomes: list[Outcome] = []
    if targets:
        workers = min(MAX_PARALLEL, len(targets))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="synclease-dash-cleanup") as pool:
            outcomes = list(
                pool.map(lambda t: escalate(t, DASHBOARD_PORT_RANGE, chosen_ops, step_timeout), targets)
            )
    return CleanupResult(
        swept=tuple(o for o in outcomes if o.ok),
        failed=tuple(o for o in outcomes if not o.ok),
        skipped=tuple(j for j in judged if j.verdict in (Verdict.MISSING_PID, Verdict.IDENTITY_MISMATCH)),
        scan_error=result.listener_table_error,
        ignored_ports=tuple(j.port for j in judged if not j.verdict.same_project),
    )
