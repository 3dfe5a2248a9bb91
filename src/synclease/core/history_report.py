"""What the ledger adds to the doctor document: ``history`` (the last events, newest first) and the
findings only a memory can give: ``silent_death``, ``start_failures``, ``work_stalled``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from synclease.core.health import HealthReport
from synclease.core.ledger import LedgerEvent
from synclease.core.ledger_codec import to_document
from synclease.core.ledger_queries import doctor_signals, recent
from synclease.core.record import record

HISTORY_LIMIT = 20


def finding(fid: str, severity: str, summary: str, command: str) -> dict[str, Any]:
    """The one shape of a doctor finding: an id, a severity, a summary, one remediation command."""
    return {"id": fid, "severity": severity, "summary": summary, "remediation": {"command": command}}


@record
class History:
    """The ledger as the doctor sees it: its events (oldest first), and the unread line count."""

    events: tuple[LedgerEvent, ...] = ()
    skipped_lines: int = 0

    def section(self) -> list[dict[str, Any]]:
        return [to_document(e) for e in recent(self.events, HISTORY_LIMIT)]


def _tail(event: LedgerEvent) -> str:
    lines = event.evidence.log_tail or ()
    return f"; its log ended: {lines[-1]}" if lines else ""


def history_findings(
    history: History,
    now: datetime,
    *,
    logged_in: bool,
    singleton: HealthReport | None,
    stall_seconds: float,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    signals = doctor_signals(history.events, now)
    if signals.silent_death:
        last = signals.vanished[0]
        out.append(
            finding(
                "silent_death",
                "error",
                f"{len(signals.vanished)} sync daemon(s) died without a word in the last 24 h "
                f"(the last: {last.instance_id}, {last.reason.value if last.reason else 'unknown'})"
                f"{_tail(last)}",
                f"synclease sync history --instance {last.instance_id}",
            )
        )
    if signals.start_failures:
        last = signals.start_failed[0]
        code = last.evidence.error_code or "unknown"
        out.append(
            finding(
                "start_failures",
                "error",
                f"{len(signals.start_failed)} failed daemon starts in the last hour (last error: {code})"
                f"{_tail(last)}",
                "synclease sync start --force-spawn",
            )
        )
    if logged_in and singleton is not None and stalled(singleton, now, stall_seconds):
        out.append(
            finding(
                "work_stalled",
                "warning",
                f"{singleton.queue_depth} event(s) wait and nothing was uploaded for over "
                f"{stall_seconds:g} s (consecutive failures: {singleton.consecutive_failures or 0})",
                "synclease sync status",
            )
        )
    return out


def stalled(health: HealthReport, now: datetime, stall_seconds: float) -> bool:
    """Events wait and the last successful upload (or, if none, the daemon's start) is too old."""
    if not health.queue_depth:
        return False
    since = health.last_sync or health.started_at
    return since is not None and now - since > timedelta(seconds=stall_seconds)
