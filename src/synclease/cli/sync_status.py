"""``synclease sync status [--json]``: the singleton, its lease and queue, and other live leases."""

from __future__ import annotations

from typing import Any

from synclease.adapters.ledger_store import LedgerStore
from synclease.cli.output import emit_json, stdout_console
from synclease.core.clock import to_wire
from synclease.core.fleet import LeaseStatus, lease_status
from synclease.core.ledger_codec import to_document
from synclease.core.ledger_queries import END_KINDS
from synclease.services import context
from synclease.services.singleton import SingletonView, live_singleton


def _wire(moment: Any) -> str | None:
    return None if moment is None else to_wire(moment)


def _singleton(view: SingletonView) -> dict[str, Any]:
    health = view.health
    return {
        "instance_id": view.lease.instance_id,
        "pid": view.lease.pid,
        "port": view.lease.port,
        "package_version": view.package_version,
        "lease": {
            "state": health.lease_state,
            "renewed_at": _wire(health.lease_renewed_at),
            "expires_at": _wire(health.lease_expires_at),
        },
        "sync": {
            "running": health.sync_running,
            "queue_depth": health.queue_depth,
            "last_sync": _wire(health.last_sync),
            "consecutive_failures": health.consecutive_failures,
            "auth_problem": health.auth_problem,
            "dead_letters": health.dead_letters,
        },
        "auth_scope": health.auth_scope,
    }


def collect(ctx: context.Context) -> dict[str, Any]:
    store = ctx.store
    view = live_singleton(store, ctx.clock)
    now = ctx.clock.now()
    leases: list[dict[str, Any]] = []
    for entry in store.list():
        if entry.lease is None:
            leases.append({"instance_id": entry.instance_id, "state": "unreadable", "problem": entry.problem})
            continue
        lease = entry.lease
        leases.append(
            {
                "instance_id": lease.instance_id,
                "pid": lease.pid,
                "port": lease.port,
                "package_version": lease.package_version,
                "state": "expired" if lease_status(entry, now) is LeaseStatus.EXPIRED else lease.state,
                "renewed_at": to_wire(lease.renewed_at),
                "is_singleton": view is not None and view.lease.instance_id == lease.instance_id,
            }
        )
    return {
        "healthy": view is not None,
        "daemon_root": str(ctx.root.path),
        "singleton": None if view is None else _singleton(view),
        "leases": leases,
        "last_retirement": _last_retirement(ctx),
    }


def _last_retirement(ctx: context.Context) -> dict[str, Any] | None:
    """The newest ``retired``, ``reaped`` or ``vanished`` event of the ledger, as it was recorded."""
    last = next((e for e in LedgerStore(ctx.root).newest_first() if e.kind in END_KINDS), None)
    return None if last is None else to_document(last)


def run(as_json: bool) -> int:
    ctx = context.load()
    report = collect(ctx)
    if as_json:
        emit_json(report)
    else:
        _render(report)
    return 0 if report["healthy"] else 1


def _render(report: dict[str, Any]) -> None:
    from rich.table import Table

    single = report["singleton"]
    if single is None:
        stdout_console.print("no healthy sync daemon serves this root (run `synclease sync start`)")
    else:
        sync = single.get("sync") or {}
        stdout_console.print(
            f"sync daemon: pid {single['pid']}, port {single['port']}, version {single['package_version']}, "
            f"queue {sync.get('queue_depth') or 0}, failures {sync.get('consecutive_failures') or 0}, "
            f"last sync {sync.get('last_sync') or 'never'}"
            + (f", dead letters {sync['dead_letters']}" if sync.get("dead_letters") else "")
        )
    last = report["last_retirement"]
    if last is not None:
        by = f" (by {last['by']['command']})" if last.get("by") else ""
        stdout_console.print(
            f"last retirement: {last['instance_id']} {last['event']} at {last['at']}, "
            f"reason {last['reason'] or 'unknown'}{by}",
            markup=False,
        )
    table = Table("instance", "pid", "port", "version", "state", "renewed", title="leases")
    for lease in report["leases"]:
        table.add_row(
            lease["instance_id"],
            str(lease.get("pid", "")),
            str(lease.get("port", "")),
            lease.get("package_version", ""),
            lease["state"],
            lease.get("renewed_at", ""),
        )
    stdout_console.print(table)
