"""``synclease dashboard [--project DIR] [--port-hint N] [--stop] [--json]``: the project's dashboard.

Parse, call :mod:`synclease.services.dashboard`, render. Local-only intent: nothing here touches sync.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synclease.adapters import dashboard_store, environment
from synclease.cli.output import emit_json, stdout_console
from synclease.core.constants import DASHBOARD_PORT_RANGE
from synclease.core.dashboard_record import default_port_hint
from synclease.core.errors import BadInputError
from synclease.services import dashboard
from synclease.services.dashboard import Started, StopResult


def check_port_hint(port_hint: int | None, project: Path) -> int:
    if port_hint is None:
        return default_port_hint(project)
    if port_hint not in DASHBOARD_PORT_RANGE:
        first, last = DASHBOARD_PORT_RANGE.start, DASHBOARD_PORT_RANGE.stop - 1
        raise BadInputError(
            f"--port-hint {port_hint} is outside the dashboard range {first}-{last}",
            hint=f"use a port from {first} to {last}",
        )
    return port_hint


def stop_document(project: Path, result: StopResult) -> dict[str, Any]:
    document: dict[str, Any] = {
        "project": str(project),
        "pid": result.pid,
        "port": result.port,
        "cleanup_path": result.cleanup_path,
        "failure_reason": result.failure_reason,
        "stopped": result.stopped,
        "reason": result.reason,
    }
    if result.reason == "not_running":
        document["record_problem"] = result.record_problem
    return document


def _print_start(started: Started) -> None:
    record, swept = started.record, started.cleanup
    how = "reused" if started.reused else "started"
    stdout_console.print(
        f"dashboard {how}: {record.open_url}  (pid {record.pid}, project {record.project})", markup=False
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


def _print_stop(project: Path, result: StopResult) -> None:
    if result.stopped:
        stdout_console.print(f"stopped dashboard pid {result.pid} ({result.cleanup_path})", markup=False)
    elif result.reason == "not_running":
        stdout_console.print(f"no dashboard running for {project}", markup=False)
    else:
        stdout_console.print(
            f"could not stop dashboard pid {result.pid}: {result.failure_reason}", markup=False
        )


def run(project: str | None, port_hint: int | None, stop_it: bool, as_json: bool) -> int:
    resolved = dashboard_store.resolve_project(project)
    hint = check_port_hint(port_hint, resolved)
    dashboard_store.prepare_kittify(resolved)
    if stop_it:
        result = dashboard.stop(resolved)
        emit_json(stop_document(resolved, result)) if as_json else _print_stop(resolved, result)
        return 0 if result.stopped or result.reason == "not_running" else 1
    started = dashboard.start(resolved, hint, environment.package_version())
    if as_json:
        record = started.record
        emit_json(
            {
                "url": record.open_url,
                "port": record.port,
                "pid": record.pid,
                "project": record.project,
                "reused": started.reused,
                "cleanup": started.cleanup.to_json(),
            }
        )
    else:
        _print_start(started)
    return 1 if started.cleanup.failed else 0
