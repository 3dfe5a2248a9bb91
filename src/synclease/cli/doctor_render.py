"""Human rendering of the doctor document: a rich table per section, then findings with commands."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from synclease.cli.output import stdout_console
from synclease.core.constants import RESET_FORCE
from synclease.core.fleet import IdentityRecord


def confirm_operator_required(manual: list[IdentityRecord]) -> bool:
    stdout_console.print(f"{len(manual)} daemon(s) need an operator's decision:")
    for record in manual:
        stdout_console.print(f"  pid {record.pid} port {record.port}: {record.skip_reason}")
    answer = stdout_console.input("Clean them too? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(*columns, title=title, title_justify="left")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    stdout_console.print(table)


def _render_other_roots(records: list[dict[str, Any]]) -> None:
    """One unwrapped line per listener of another root: which root, and how it was judged there."""
    for r in records:
        root = r.get("other_root")
        if root is None and r.get("root_problem") is None:
            continue
        why = r["skip_reason"] or "safe_auto"
        if r.get("root_problem"):
            why = f"{why}: its root could not be read safely ({r['root_problem']})"
        stdout_console.print(
            f"port {r['port']} pid {r['pid']} belongs to root {root or '(not named)'}: {why}",
            markup=False,
        )


def render(doc: dict[str, Any]) -> None:
    con = stdout_console
    con.print(f"daemon root: {doc['daemon_root']}  (scope {doc.get('scope_id')})")
    daemon = doc["daemon"]
    if daemon:
        con.print(
            f"live daemon: pid {daemon['pid']} port {daemon['port']} version {daemon['package_version']}"
        )
    else:
        con.print("live daemon: none")
    if doc["orphans"]:
        _table(
            "orphans",
            ["port", "pid", "version", "lease", "class", "reason"],
            [
                [
                    o["port"],
                    o["pid"],
                    o["package_version"],
                    o["lease_state"],
                    o["cleanup_class"],
                    o["skip_reason"],
                ]
                for o in doc["orphans"]
            ],
        )
    if doc["ignored"]:
        _table(
            "ignored (never touched)",
            ["port", "pid", "reason"],
            [[i["port"], i["pid"], i["skip_reason"]] for i in doc["ignored"]],
        )
        for item in doc["ignored"]:
            if "note" in item:
                con.print(f"port {item['port']}: {item['note']} (never touched)", markup=False)
    _render_other_roots(doc["orphans"] + doc["ignored"])
    if doc["leases"]:
        _table(
            "leases",
            ["instance", "pid", "port", "state", "holder", "problem"],
            [
                [x["instance_id"], x.get("pid"), x.get("port"), x["state"], x.get("holder"), x.get("problem")]
                for x in doc["leases"]
            ],
        )
    _render_queue(doc.get("queue"))
    _render_reset(doc.get("reset_result"))
    for finding in doc["findings"]:
        con.print(
            f"[{finding['severity']}] {finding['summary']}\n    fix: {finding['remediation']['command']}",
            markup=False,
        )
    scan = doc["scan"]
    con.print(f"scanned {scan['ports_scanned']} ports in {scan['duration_ms']:.0f} ms")


def _render_queue(queue: dict[str, Any] | None) -> None:
    if queue is None:
        return
    con = stdout_console
    con.print(f"queue: {queue['depth']} event(s) waiting, {queue['dead_letters']} dead-lettered")
    for db in queue["databases"]:
        where = f"  {db['queue']} queue {db['path']}"
        if "problem" in db:
            con.print(f"{where}: NOT USABLE ({db['problem']})", markup=False)
        else:
            con.print(f"{where}: {db['depth']} waiting, {db['dead_letters']} dead-lettered", markup=False)


def _render_reset(result: dict[str, Any] | None) -> None:
    if result is None:
        return
    con = stdout_console
    for item in result["swept"]:
        con.print(
            f"swept   pid {item['pid']} port {item['port']} "
            f"v{item['package_version']} via {item['cleanup_path']}"
        )
    for item in result["failed"]:
        con.print(f"FAILED  pid {item['pid']} port {item['port']}: {item['failure_reason']}")
    for item in result["leases_removed"]:
        con.print(f"removed stale lease {item['instance_id']} ({item['reason']})")
    manual = [s for s in result["skipped"] if s["cleanup_class"] == "operator_required"]
    for item in manual:
        con.print(f"skipped pid {item['pid']} port {item['port']}: {item['skip_reason']}")
    if manual:
        con.print(f"to clean the skipped daemons too: {RESET_FORCE}", markup=False)
