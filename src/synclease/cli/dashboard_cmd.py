"""``synclease dashboard [--project DIR] [--port-hint N] [--stop] [--json]``: the project's dashboard.

Local-only intent: nothing here locates, prepares, starts, reuses or cleans a sync daemon or its root.
Start and stop run under a per-project file lock (``<project>/.kittify/.dashboard.lock``), so two
commands at once for one project never make two dashboards nor retire each other's.

* start: reuse the recorded dashboard if its live health matches the record (pid, port, project,
  process start time) and it is not older than this install; otherwise spawn one detached
  (``python -m synclease.dashboard``: own session, stdin closed, output appended to
  ``<project>/.kittify/dashboard.log``) and wait for its health, failing fast with its log tail if it
  exits. Then run the dashboard start cleanup (:mod:`synclease.dashboard.cleanup`).
* ``--stop``: polite ``POST /api/shutdown`` with the record's token, then SIGTERM/SIGKILL, each only
  after re-checking the OS identity (listener PID + start time on the recorded port).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from synclease import httpc, liveness, package_version
from synclease.cli.output import emit_json, stdout_console
from synclease.constants import DASHBOARD_PORT_RANGE
from synclease.dashboard import record as rec
from synclease.dashboard.cleanup import CleanupResult, cleanup
from synclease.errors import BadInputError, SyncleaseError
from synclease.fleet.escalate import Target, escalate
from synclease.fleet.osops import RealOps
from synclease.fleet.probe import listener_table
from synclease.lease.holder import same_start
from synclease.spawn import spawn_detached, wait_for_child
from synclease.versions import is_older

START_DEADLINE_SECONDS = 10.0
HEALTH_TIMEOUT_SECONDS = 0.5
PROJECT_LOCK_TIMEOUT_SECONDS = 30.0
STOP_STEP_SECONDS = 3.0


class ShutdownOps(RealOps):
    """The shared real operations, with the dashboard's polite step: ``POST /api/shutdown``."""

    def retire(self, target: Target) -> bool:
        if target.token is None:
            return False
        return httpc.post(target.port, "/api/shutdown", target.token, timeout=self.http_timeout).ok


# --- helpers ------------------------------------------------------------------------------------


def check_port_hint(port_hint: int | None, project: Path) -> int:
    if port_hint is None:
        return rec.default_port_hint(project)
    if port_hint not in DASHBOARD_PORT_RANGE:
        first, last = DASHBOARD_PORT_RANGE.start, DASHBOARD_PORT_RANGE.stop - 1
        raise BadInputError(
            f"--port-hint {port_hint} is outside the dashboard range {first}-{last}",
            hint=f"use a port from {first} to {last}",
        )
    return port_hint


@contextlib.contextmanager
def project_lock(project: Path) -> Iterator[None]:
    lock = FileLock(rec.lock_path(project), timeout=PROJECT_LOCK_TIMEOUT_SECONDS, mode=0o600)
    try:
        lock.acquire()
    except Timeout:
        raise SyncleaseError(
            f"the dashboard lock {lock.lock_file} is busy",
            hint="another `synclease dashboard` command runs for this project; retry shortly",
        ) from None
    try:
        yield
    finally:
        lock.release()


def live_health(record: rec.DashboardRecord, project: Path) -> dict[str, Any] | None:
    """The recorded dashboard's self-report if it matches the record (family, project, pid, port and
    process start time), else None."""
    reply = httpc.get_json(record.port, "/api/health", timeout=HEALTH_TIMEOUT_SECONDS)
    doc = reply.document
    if not reply.ok or not isinstance(doc, dict):
        return None
    start = doc.get("process_start_time")
    if (
        doc.get("daemon_family") != rec.FAMILY
        or doc.get("project") != str(project)
        or doc.get("pid") != record.pid
        or doc.get("port") != record.port
        or not isinstance(start, int | float)
        or isinstance(start, bool)
        or not same_start(record.process_start_time, float(start))
    ):
        return None
    return doc


def reusable(record: rec.DashboardRecord | None, project: Path, version: str) -> bool:
    if record is None:
        return False
    health = live_health(record, project)
    if health is None:
        return False
    theirs = health.get("package_version")
    return isinstance(theirs, str) and not is_older(theirs, version)


def spawn(project: Path, port_hint: int) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``python -m synclease.dashboard`` detached; returns the child and the log offset."""
    argv = [
        sys.executable,
        "-m",
        "synclease.dashboard",
        "--project",
        str(project),
        "--port-hint",
        str(port_hint),
    ]
    return spawn_detached(argv, rec.log_path(project), project)


def wait_healthy(child: subprocess.Popen[bytes], project: Path, offset: int) -> rec.DashboardRecord:
    """Wait until the record and the live health name ``child``; fail fast with this spawn's log tail."""

    def probe() -> rec.DashboardRecord | None:
        record = rec.read(project).record
        if record is not None and record.pid == child.pid and live_health(record, project) is not None:
            return record
        return None

    return wait_for_child(
        child,
        probe,
        what="dashboard",
        log_path=rec.log_path(project),
        offset=offset,
        deadline_s=START_DEADLINE_SECONDS,
    )


# --- start and stop -----------------------------------------------------------------------------


def start(project: Path, port_hint: int) -> tuple[rec.DashboardRecord, bool, CleanupResult]:
    version = package_version()
    with project_lock(project):
        current = rec.read(project).record
        reused = current is not None and reusable(current, project, version)
        if not reused or current is None:
            child, offset = spawn(project, port_hint)
            current = wait_healthy(child, project, offset)
        swept = cleanup(project, current)
    return current, reused, swept


def _proven_listener(record: rec.DashboardRecord) -> bool:
    """The OS shows the recorded PID, with the recorded start time, listening on the recorded port."""
    listener = listener_table(range(record.port, record.port + 1)).get(record.port)
    return (
        listener is not None
        and listener.pid == record.pid
        and same_start(record.process_start_time, listener.pid_start_time)
    )


def stop(project: Path) -> dict[str, Any]:
    with project_lock(project):
        entry = rec.read(project)
        record = entry.record
        if record is None:
            return {"stopped": False, "reason": "not_running", "record_problem": entry.problem}
        base: dict[str, Any] = {"pid": record.pid, "port": record.port, "cleanup_path": None}
        facts = liveness.process_facts(record.pid)
        gone = not facts.exists or (
            facts.start_time is not None and not same_start(record.process_start_time, facts.start_time)
        )
        if gone:
            rec.remove_if_own(project, record)
            return {**base, "stopped": False, "reason": "not_running", "record_problem": "stale_record"}
        if not _proven_listener(record):
            return {
                **base,
                "stopped": False,
                "reason": "identity_unproven",
                "failure_reason": "identity_unproven",
            }
        target = Target(record.pid, record.port, record.process_start_time, None, record.token)
        outcome = escalate(target, DASHBOARD_PORT_RANGE, ShutdownOps(), step_timeout=STOP_STEP_SECONDS)
        if outcome.ok:
            rec.remove_if_own(project, record)  # in case it could not remove its own record
        return {
            **base,
            "stopped": outcome.ok,
            "reason": "stopped" if outcome.ok else "failed",
            "cleanup_path": outcome.path.value if outcome.path else None,
            "failure_reason": outcome.failure,
        }


# --- the command --------------------------------------------------------------------------------


def _print_start(record: rec.DashboardRecord, reused: bool, swept: CleanupResult) -> None:
    how = "reused" if reused else "started"
    stdout_console.print(
        f"dashboard {how}: {record.url}  (pid {record.pid}, project {record.project})", markup=False
    )
    for outcome in swept.swept:
        stdout_console.print(
            f"cleaned stale dashboard pid {outcome.target.pid} port {outcome.target.port}", markup=False
        )
    for outcome in swept.failed:
        stdout_console.print(
            f"could not clean stale dashboard pid {outcome.target.pid} port {outcome.target.port}: "
            f"{outcome.failure}",
            markup=False,
        )


def _print_stop(project: Path, document: dict[str, Any]) -> None:
    if document["stopped"]:
        stdout_console.print(
            f"stopped dashboard pid {document['pid']} ({document['cleanup_path']})", markup=False
        )
    elif document["reason"] == "not_running":
        stdout_console.print(f"no dashboard running for {project}", markup=False)
    else:
        stdout_console.print(
            f"could not stop dashboard pid {document.get('pid')}: {document.get('failure_reason')}",
            markup=False,
        )


def run(project: str | None, port_hint: int | None, stop_it: bool, as_json: bool) -> int:
    resolved = rec.resolve_project(project)
    hint = check_port_hint(port_hint, resolved)
    rec.prepare_kittify(resolved)
    if stop_it:
        document: dict[str, Any] = {
            "project": str(resolved),
            "pid": None,
            "port": None,
            "cleanup_path": None,
            "failure_reason": None,
            **stop(resolved),
        }
        emit_json(document) if as_json else _print_stop(resolved, document)
        return 0 if document["stopped"] or document["reason"] == "not_running" else 1
    record, reused, swept = start(resolved, hint)
    if as_json:
        emit_json(
            {
                "url": record.url,
                "port": record.port,
                "pid": record.pid,
                "project": record.project,
                "reused": reused,
                "cleanup": swept.to_json(),
            }
        )
    else:
        _print_start(record, reused, swept)
    return 1 if swept.failed else 0
