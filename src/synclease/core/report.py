"""The doctor document (schema_version 2) and its findings, built from a survey and what was read."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from synclease.core.clock import to_wire
from synclease.core.constants import RESET, RESET_FORCE, STALL_SECONDS
from synclease.core.fleet import (
    CleanupClass,
    IdentityRecord,
    LeaseStatus,
    SkipReason,
    StaleLease,
    Survey,
    lease_status,
)
from synclease.core.health import HealthReport
from synclease.core.history_report import History, finding, history_findings
from synclease.core.lease import LeaseEntry
from synclease.core.queue_state import QueueFacts, queue_findings, queue_section
from synclease.core.record import record

DOCTOR_SCHEMA_VERSION = 2
NO_HISTORY = History()


@record
class SessionSummary:
    """The stored session as the doctor shows it (never the token), or why the file is not trusted."""

    server_url: str | None = None
    principal: str | None = None
    team: str | None = None
    auth_scope: str | None = None
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.problem is not None:
            return {"problem": self.problem}
        return {
            "server_url": self.server_url,
            "principal": self.principal,
            "team": self.team,
            "auth_scope": self.auth_scope,
        }


def singleton_health(survey: Survey) -> HealthReport | None:
    """The recorded singleton's self-report, as the scan read it."""
    single = survey.singleton
    if single is None:
        return None
    observed = next((obs for obs in survey.scan.observations if obs.port == single.port), None)
    return None if observed is None else observed.health


def auth_problem(survey: Survey) -> bool:
    """Whether the live singleton's self-report says the server rejected its session token."""
    health = singleton_health(survey)
    return bool(health is not None and health.auth_problem)


def _lease_row(entry: LeaseEntry, now: datetime, verdicts: dict[str, StaleLease]) -> dict[str, Any]:
    verdict = verdicts.get(entry.instance_id)
    row: dict[str, Any] = {"instance_id": entry.instance_id, "path": str(entry.path)}
    lease = entry.lease
    if lease is None:
        row.update(state=LeaseStatus.UNREADABLE.value, problem=entry.problem, detail=entry.detail or None)
        return row
    row.update(
        state=lease_status(entry, now).value,
        lease_state=lease.state,
        pid=lease.pid,
        port=lease.port,
        package_version=lease.package_version,
        protocol_version=lease.protocol_version,
        renewed_at=to_wire(lease.renewed_at),
        expires_at=to_wire(lease.expires_at),
        holder=verdict.holder.value if verdict and verdict.holder else None,
        stale=bool(verdict and verdict.stale),
    )
    return row


#: What a ``never_touch`` listener is, in one line, where its reason alone would puzzle a reader.
IGNORED_NOTES = {SkipReason.OTHER_PID_NAMESPACE: "served from another PID namespace, e.g. a container"}


def _ignored_row(record: IdentityRecord) -> dict[str, Any]:
    row: dict[str, Any] = {
        "port": record.port,
        "pid": record.pid,
        "daemon_family": record.daemon_family,
        "skip_reason": record.skip_reason.value if record.skip_reason else None,
        "other_root": record.other_root,
        "is_recorded_singleton": record.is_recorded_singleton,
    }
    note = IGNORED_NOTES.get(record.skip_reason) if record.skip_reason else None
    if note is not None:
        row["note"] = note
    return row


def owner_look(port: int) -> str:
    """The look that names a listener's owner where this user cannot see it (``missing_pid``)."""
    return f"sudo lsof -nP -iTCP:{port} -sTCP:LISTEN"


def _operator_findings(manual: Sequence[IdentityRecord]) -> list[dict[str, Any]]:
    """``--reset --force`` is advised only for daemons it can act on: one whose owner the OS table does
    not show (``missing_pid``) would fail again, so its fix is the look that names the owner."""
    unseen = [r for r in manual if r.skip_reason is SkipReason.MISSING_PID]
    forceable = [r for r in manual if r.skip_reason is not SkipReason.MISSING_PID]
    out = []
    if forceable:
        reasons = ", ".join(sorted({r.skip_reason.value for r in forceable if r.skip_reason}))
        out.append(
            finding(
                "orphans_operator_required",
                "warning",
                f"{len(forceable)} sync daemon(s) need an operator's decision ({reasons})",
                RESET_FORCE,
            )
        )
    if unseen:
        ports = ",".join(str(r.port) for r in unseen)
        out.append(
            finding(
                "owner_not_visible",
                "warning",
                f"{len(unseen)} sync daemon(s) whose owning process this user cannot see (ports {ports}); "
                "nothing here can prove or clean them",
                owner_look(unseen[0].port),
            )
        )
    return out


#: The one-step check for each fault a daemon reports while writing its lease.
_WRITE_FAULT_FIXES = {
    "ENOSPC": ("the filesystem is full", "df -h -- {root}"),
    "EDQUOT": ("the disk quota is used up", "quota -s"),
    "EROFS": ("the filesystem is read-only", "findmnt -T {root}"),
    "EACCES": ("permission is denied", "ls -ld -- {root}"),
    "EPERM": ("permission is denied", "ls -ld -- {root}"),
}


def _unwritable(survey: Survey) -> list[dict[str, Any]]:
    """``root_unwritable``: a daemon of this root says its last lease write failed (it keeps serving)."""
    root = survey.ctx.daemon_root
    codes = sorted(
        {
            obs.health.lease_write_error
            for obs in survey.scan.observations
            if obs.health is not None
            and obs.health.lease_write_error
            and obs.health.scope_id == survey.ctx.scope_id
        }
    )
    out = []
    for code in codes:
        assert code is not None
        what, command = _WRITE_FAULT_FIXES.get(code, ("the write failed", "ls -ld -- {root}"))
        out.append(
            finding(
                "root_unwritable",
                "error",
                f"a sync daemon cannot renew its lease in {root} ({code}: {what}); it keeps serving and "
                "retries every heartbeat",
                command.format(root=shlex.quote(root)),
            )
        )
    return out


def findings(
    survey: Survey, session: SessionSummary | None, queues: Sequence[QueueFacts] = ()
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    safe = [r for r in survey.orphans if r.cleanup_class is CleanupClass.SAFE_AUTO]
    manual = [r for r in survey.orphans if r.cleanup_class is CleanupClass.OPERATOR_REQUIRED]
    stale = [v for v in survey.lease_verdicts if v.stale]
    if safe:
        out.append(
            finding(
                "orphans_safe_auto",
                "warning",
                f"{len(safe)} orphaned sync daemon(s) with expired leases, provably ours",
                RESET,
            )
        )
    out.extend(_operator_findings(manual))
    if stale:
        out.append(finding("stale_leases", "info", f"{len(stale)} lease file(s) whose holder is gone", RESET))
    for entry in survey.ctx.leases:
        if entry.lease is None:
            out.append(
                finding(
                    "unreadable_lease",
                    "error",
                    f"lease file {entry.path.name} is not trusted ({entry.problem})",
                    f"rm -- {shlex.quote(str(entry.path))}",
                )
            )
    out.extend(_unwritable(survey))
    single = survey.singleton
    if single is not None and single.lease_state is not LeaseStatus.LIVE:
        out.append(
            finding(
                "singleton_stalled",
                "warning",
                f"the recorded daemon (pid {single.pid}) has stopped renewing its lease",
                "synclease sync start",
            )
        )
    if single is None:
        out.append(
            finding(
                "no_daemon", "info", "no live sync daemon is recorded for this root", "synclease sync start"
            )
        )
    if survey.scan.listener_table_error:
        out.append(
            finding(
                "listener_table_unreadable",
                "warning",
                f"the OS listener table could not be read ({survey.scan.listener_table_error}); "
                "PIDs are unproven, so nothing is cleaned automatically",
                "lsof -nP -iTCP -sTCP:LISTEN",
            )
        )
    if session is not None and session.problem:
        out.append(
            finding(
                "session_unreadable",
                "error",
                f"the session file is not trusted ({session.problem})",
                "synclease auth logout",
            )
        )
    elif session is None:
        out.append(
            finding(
                "no_session",
                "info",
                "not logged in: events stay in the local queue",
                "synclease auth login --server URL",
            )
        )
    elif auth_problem(survey):
        url = session.server_url or "URL"
        out.append(
            finding(
                "auth_rejected",
                "error",
                "the server rejected the session token (401)",
                f"synclease auth login --server {shlex.quote(str(url))}",
            )
        )
    logged_in = session is not None and session.problem is None
    out.extend(finding(*parts) for parts in queue_findings(queues, logged_in))
    return out


@record(kw_only=True)
class DoctorView:
    """What one doctor run saw: the survey and what was read beside it (``queues``: this login's queue
    databases, read-only; ``history``: what the ledger remembers), at ``generated_at``."""

    survey: Survey
    generated_at: datetime
    session: SessionSummary | None
    queues: Sequence[QueueFacts] = ()
    history: History = NO_HISTORY
    stall_seconds: float = STALL_SECONDS


def every_finding(view: DoctorView) -> list[dict[str, Any]]:
    """The document's findings: what the survey, the session and the queues show, then what the ledger
    remembers."""
    session = view.session
    remembered = history_findings(
        view.history,
        view.generated_at,
        logged_in=session is not None and session.problem is None,
        singleton=singleton_health(view.survey),
        stall_seconds=view.stall_seconds,
    )
    return findings(view.survey, session, view.queues) + remembered


def build(view: DoctorView) -> dict[str, Any]:
    """The doctor document (``auth doctor --json``)."""
    survey = view.survey
    verdicts = {v.instance_id: v for v in survey.lease_verdicts}
    singleton = survey.singleton
    return {
        "schema_version": DOCTOR_SCHEMA_VERSION,
        "generated_at": to_wire(view.generated_at),
        "daemon_root": survey.ctx.daemon_root,
        "scope_id": survey.ctx.scope_id,
        "session": None if view.session is None else view.session.to_json(),
        "daemon": singleton.to_json() if singleton else None,
        "orphans": [r.to_json() for r in survey.orphans],
        "ignored": [_ignored_row(r) for r in survey.ignored],
        "leases": [_lease_row(e, survey.ctx.now, verdicts) for e in survey.ctx.leases],
        "findings": every_finding(view),
        "scan": survey.scan.timings(),
        "queue": queue_section(view.queues),
        "history": view.history.section(),
    }
