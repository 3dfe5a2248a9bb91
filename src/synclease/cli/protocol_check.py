"""``synclease protocol check (--port N | --root DIR [--family F]) [--retire [--retire-by MODE]] [--json]``:
judge one live daemon against ``protocol/lease-v1.md``, clause by clause.

Exit 0 when no clause fails (n/a never fails), 1 when one does, 2 for bad input (no daemon there).
``--json`` prints one ``protocol/check-v1.schema.json`` document.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.cli.output import emit_json, stdout_console
from synclease.core.clock import to_wire
from synclease.core.conformance import RetireMode, Status
from synclease.core.errors import EXIT_OK, EXIT_PROBLEM, BadInputError
from synclease.services.conformance import CheckReport, CheckTarget, check
from synclease.services.families import load_declared

CHECK_SCHEMA = "synclease.check"
CHECK_SCHEMA_VERSION = 1
RETIRE_MODES: tuple[RetireMode, ...] = ("request", "superseded")
MARKS = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.NA: "n/a "}


def document(report: CheckReport, checked_at: str) -> dict[str, Any]:
    located = report.located
    return {
        "schema": CHECK_SCHEMA,
        "schema_version": CHECK_SCHEMA_VERSION,
        "checked_at": checked_at,
        "target": {
            "family": located.family,
            "port": located.port,
            "daemon_root": None if located.root is None else str(located.root),
            "instance_id": located.instance_id,
            "pid": report.pid,
        },
        "retire": report.retire,
        "ok": report.ok,
        "clauses": [
            {"id": r.id, "title": r.title, "status": r.status.value, "seen": r.seen} for r in report.results
        ],
    }


def _render(report: CheckReport) -> None:
    located = report.located
    con = stdout_console
    con.print(
        f"{located.family} daemon on 127.0.0.1:{located.port}"
        f" (instance {located.instance_id or '?'}, pid {report.pid or '?'})",
        markup=False,
    )
    for result in report.results:
        con.print(f"  {MARKS[result.status]} {result.id}: {result.title}: {result.seen}", markup=False)
    failed = sum(result.failed for result in report.results)
    con.print("conforms" if report.ok else f"does not conform: {failed} clause(s) failed", markup=False)


def run(
    *,
    port: int | None,
    root: str | None,
    family: str,
    retire: bool,
    retire_by: str,
    watch_seconds: float,
    as_json: bool,
) -> int:
    if (port is None) == (root is None):
        raise BadInputError("name exactly one daemon", hint="pass --port N, or --root DIR [--family NAME]")
    if port is not None and not 1 <= port <= 65535:
        raise BadInputError(f"--port {port} is not a TCP port", hint="pass the daemon's loopback port")
    if retire_by not in RETIRE_MODES:
        raise BadInputError(f"--retire-by {retire_by!r} is unknown", hint="use request or superseded")
    if not 1.0 <= watch_seconds <= 600.0:
        raise BadInputError(f"--watch {watch_seconds:g} is out of range", hint="use 1 to 600 seconds")
    mode: RetireMode | None = None
    if retire:
        mode = "request" if retire_by == "request" else "superseded"
    load_declared(os.environ)  # a host's family (SYNCLEASE_FAMILIES) is checked like ours
    target = CheckTarget(port=port, root=None if root is None else Path(root), family=family)
    checked_at = to_wire(SYSTEM_CLOCK.now())
    report = check(target, SYSTEM_CLOCK, retire=mode, max_watch=watch_seconds)
    if as_json:
        emit_json(document(report, checked_at))
    else:
        _render(report)
    return EXIT_OK if report.ok else EXIT_PROBLEM
