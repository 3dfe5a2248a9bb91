"""Dashboard start and stop, and the start cleanup. Local-only intent: nothing here locates, prepares,
starts, reuses, scans or cleans a sync daemon or its root.

Start and stop run under the per-project lock (``<project>/.kittify/.dashboard.lock``), so two commands
at once for one project never make two dashboards nor retire each other's.

* start: reuse the recorded dashboard if its live self-report agrees with the record (family, project,
  pid, port, process start time) and it is not older than this install; otherwise spawn one detached
  (``python -m synclease.daemons.dashboard``, output appended to ``<project>/.kittify/dashboard.log``) and
  wait for its health. Then scan the dashboard range once and escalate the proven stale dashboards
  of this project (:func:`synclease.core.dashboards.judge`), each signal after re-checking the OS.
* stop: polite ``POST /api/shutdown`` with the record's token, then SIGTERM/SIGKILL, each only after
  re-checking the OS identity (listener PID + start time on the recorded port).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from synclease.adapters import dashboard_store as store
from synclease.adapters import http_client, listeners, probe, process
from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.signals import InParallel, ShutdownOps
from synclease.adapters.spawn import python_module, spawn_detached, wait_for_child
from synclease.core.clock import Clock
from synclease.core.constants import HEALTH_TIMEOUT_SECONDS
from synclease.core.dashboard_record import DashboardRecord, log_path
from synclease.core.dashboards import CleanupResult, DashboardVerdict, judge_all
from synclease.core.escalate import Ops, Target, escalate, escalate_wave
from synclease.core.family import DASHBOARD_FAMILY
from synclease.core.fleet import ScanResult
from synclease.core.health import HealthReport, agrees, parse_health
from synclease.core.identity import is_gone, same_start
from synclease.core.record import record
from synclease.core.versions import is_older

DASHBOARD_MODULE = "synclease.daemons.dashboard"
START_DEADLINE_SECONDS = 10.0
CLEANUP_STEP_SECONDS = 1.0
STOP_STEP_SECONDS = 3.0


# --- the start cleanup --------------------------------------------------------------------------


def cleanup(
    project: Path,
    recorded: DashboardRecord | None,
    *,
    ops: Ops | None = None,
    scan: Callable[[], ScanResult] | None = None,
    step_timeout: float = CLEANUP_STEP_SECONDS,
) -> CleanupResult:
    """Scan the dashboard range once, judge every listener, escalate the proven targets in one wave."""
    claims = None if recorded is None else {recorded.port: {recorded.pid}}
    result = (
        scan()
        if scan is not None
        else probe.scan(DASHBOARD_FAMILY.port_range, family=DASHBOARD_FAMILY, claimed_pids=claims)
    )
    judged = judge_all(result.observations, str(project), recorded, os.getpid())
    targets = [
        Target(j.pid, j.port, j.start_time, None, None)
        for j in judged
        if j.verdict is DashboardVerdict.TARGET and j.pid is not None and j.start_time is not None
    ]
    chosen: Ops = ops if ops is not None else ShutdownOps()
    outcomes = escalate_wave(targets, DASHBOARD_FAMILY.port_range, chosen, InParallel(chosen), step_timeout)
    return CleanupResult(
        swept=tuple(o for o in outcomes if o.ok),
        failed=tuple(o for o in outcomes if not o.ok),
        skipped=tuple(
            j
            for j in judged
            if j.verdict in (DashboardVerdict.MISSING_PID, DashboardVerdict.IDENTITY_MISMATCH)
        ),
        scan_error=result.listener_table_error,
        ignored_ports=tuple(j.port for j in judged if not j.verdict.same_project),
    )


# --- start --------------------------------------------------------------------------------------


def live_health(record: DashboardRecord) -> HealthReport | None:
    """The recorded dashboard's self-report if it agrees with the record, else None."""
    reply = http_client.get_json(record.port, "/api/health", HEALTH_TIMEOUT_SECONDS)
    report = parse_health(reply.document) if reply.ok else None
    return report if agrees(report, record.claim) else None


def reusable(record: DashboardRecord | None, version: str) -> bool:
    if record is None:
        return False
    health = live_health(record)
    return (
        health is not None
        and health.package_version is not None
        and not is_older(health.package_version, version)
    )


def spawn(project: Path, port_hint: int) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``python -m synclease.daemons.dashboard`` detached; returns the child and the log offset."""
    argv = python_module(DASHBOARD_MODULE, "--project", str(project), "--port-hint", str(port_hint))
    return spawn_detached(argv, log_path(project), project)


def wait_healthy(child: subprocess.Popen[bytes], project: Path, offset: int, clock: Clock) -> DashboardRecord:
    """Wait until the record and the live health name ``child``; fail fast with this spawn's log tail."""

    def ready() -> DashboardRecord | None:
        record = store.read(project).record
        if record is not None and record.pid == child.pid and live_health(record) is not None:
            return record
        return None

    return wait_for_child(
        child,
        ready,
        what="dashboard",
        log_path=log_path(project),
        offset=offset,
        deadline_s=START_DEADLINE_SECONDS,
        clock=clock,
    )


@record
class Started:
    record: DashboardRecord
    reused: bool
    cleanup: CleanupResult


def start(project: Path, port_hint: int, version: str, clock: Clock = SYSTEM_CLOCK) -> Started:
    with store.project_lock(project):
        current = store.read(project).record
        reused = current is not None and reusable(current, version)
        if current is not None and not reused and is_gone(current.start, process.facts(current.pid)):
            store.remove_if_own(project, current)  # the record of a provably dead dashboard goes
        if not reused or current is None:
            child, offset = spawn(project, port_hint)
            current = wait_healthy(child, project, offset, clock)
        swept = cleanup(project, current)
    return Started(current, reused, swept)


# --- stop ---------------------------------------------------------------------------------------


@record
class StopResult:
    stopped: bool
    #: ``stopped``, ``not_running``, ``identity_unproven`` or ``failed``.
    reason: str
    pid: int | None = None
    port: int | None = None
    cleanup_path: str | None = None
    failure_reason: str | None = None
    record_problem: str | None = None


def _proven_listener(record: DashboardRecord) -> bool:
    """The OS shows the recorded PID, with the recorded start time, listening on the recorded port."""
    ports = range(record.port, record.port + 1)
    listener = listeners.listener_table(ports, {record.port: {record.pid}}).get(record.port)
    return listener is not None and listener.pid == record.pid and same_start(record.start, listener.start)


def stop(project: Path, clock: Clock = SYSTEM_CLOCK) -> StopResult:
    with store.project_lock(project):
        entry = store.read(project)
        record = entry.record
        if record is None:
            return StopResult(False, "not_running", record_problem=entry.problem)
        if is_gone(record.start, process.facts(record.pid)):
            store.remove_if_own(project, record)
            return StopResult(False, "not_running", record.pid, record.port, record_problem="stale_record")
        if not _proven_listener(record):
            return StopResult(
                False, "identity_unproven", record.pid, record.port, failure_reason="identity_unproven"
            )
        target = Target(record.pid, record.port, record.start, None, record.token)
        outcome = escalate(
            target, DASHBOARD_FAMILY.port_range, ShutdownOps(clock), step_timeout=STOP_STEP_SECONDS
        )
        if outcome.ok:
            store.remove_if_own(project, record)  # in case it could not remove its own record
        return StopResult(
            outcome.ok,
            "stopped" if outcome.ok else "failed",
            record.pid,
            record.port,
            outcome.path.value if outcome.path else None,
            outcome.failure,
        )
