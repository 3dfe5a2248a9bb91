"""``synclease explain``: one verdict on one listener or lease, built from what the survey proved.

Pure: the service (:mod:`synclease.services.explain`) finds the record and the facts; this module says
what it is, which proof legs hold, why it is alive, whether ``sync start`` would reuse it, whether the
reaper would clean it (with or without ``--force``), and the one command to run next.
"""

from __future__ import annotations

import re
from typing import Any

from synclease.core.clock import to_wire
from synclease.core.constants import RESET, RESET_FORCE
from synclease.core.errors import BadInputError
from synclease.core.family import family_of_port
from synclease.core.fleet import CleanupClass, IdentityRecord, LeaseStatus, SkipReason, StaleLease
from synclease.core.ledger import LedgerEvent
from synclease.core.ledger_codec import to_document
from synclease.core.record import field, record
from synclease.core.report import owner_look

_PREFIX = re.compile(r"\A[A-Za-z0-9_-]{4,64}\Z")
_MAX_PID = 2**31 - 1


@record
class ExplainTarget:
    """What the operator named: a number (``port`` and/or ``pid``) or an instance-id ``prefix``.

    A number inside a family's port range may as well be a PID (PIDs are small on a fresh machine):
    it carries both, and what listens on that port is preferred over a process with that PID."""

    text: str
    port: int | None = None
    pid: int | None = None
    prefix: str | None = None


def parse_target(text: str) -> ExplainTarget:
    """A number in a family's port range is a port (and a PID too, when nothing listens there), any
    other positive number a PID; either may also be the start of an instance id (hex ids can be all
    digits), tried last. Else an instance-id prefix of at least 4 characters; anything else is exit 2."""
    raw = text.strip()
    if raw.isdigit():
        value = int(raw)
        prefix = raw if _PREFIX.match(raw) else None
        if family_of_port(value) is not None:
            return ExplainTarget(raw, port=value, pid=value, prefix=prefix)
        if 0 < value <= _MAX_PID:
            return ExplainTarget(raw, pid=value, prefix=prefix)
        if prefix is not None:
            return ExplainTarget(raw, prefix=prefix)
    elif _PREFIX.match(raw):
        return ExplainTarget(raw, prefix=raw)
    raise BadInputError(
        f"{text!r} is not a port, a PID or an instance-id prefix",
        hint="give e.g. 9412 (a port), 4242 (a PID) or 3f9a1c (the start of an instance id)",
    )


@record
class Reuse:
    would_reuse: bool
    why: str


@record
class Explanation:
    target: ExplainTarget
    found: bool
    daemon_family: str | None = None
    instance_id: str | None = None
    cleanup_class: CleanupClass | None = None
    skip_reason: str | None = None
    proofs: dict[str, Any] = field(default_factory=dict)
    alive_because: str | None = None
    reuse: Reuse = Reuse(False, "nothing matches")
    cleanup: tuple[bool, bool, str] = (False, False, "nothing matches")
    history: tuple[LedgerEvent, ...] = ()
    next_command: str | None = None

    def to_json(self) -> dict[str, Any]:
        reset, force, why = self.cleanup
        return {
            "target": self.target.text,
            "found": self.found,
            "daemon_family": self.daemon_family,
            "instance_id": self.instance_id,
            "cleanup_class": None if self.cleanup_class is None else self.cleanup_class.value,
            "skip_reason": self.skip_reason,
            "proofs": self.proofs,
            "alive_because": self.alive_because,
            "reuse": {"would_reuse": self.reuse.would_reuse, "why": self.reuse.why},
            "cleanup": {"reset": reset, "force": force, "why": why},
            "history": [to_document(e) for e in self.history],
            "next": {"command": self.next_command},
        }


def _wire(value: Any) -> Any:
    return None if value is None else to_wire(value)


def proofs_of(record: IdentityRecord, our_scope: str) -> dict[str, Any]:
    """Every proof leg, with its value: lease, self-report, OS listener PID, start time, scope."""
    mismatched = {m.split(":", 1)[1] for m in record.mismatches}
    return {
        "lease": {
            "present": record.lease_present,
            "state": record.lease_state.value,
            "renewed_at": _wire(record.lease_renewed_at),
            "expires_at": _wire(record.lease_expires_at),
            "problem": record.lease_problem,
        },
        "self_report": {
            "answered": record.health_error is None and record.identity_source.value == "self_report",
            "error": record.health_error,
            "matches_lease": record.self_report_matches_lease,
            "matches_listener": record.self_report_matches_listener,
        },
        "listener_pid": {
            "value": record.pid,
            "known": record.pid is not None,
            "agrees": "pid" not in mismatched,
        },
        "start_time": {
            "value": record.process_start_time,
            "ticks": record.process_start_ticks,
            "agrees": "process_start_time" not in mismatched,
        },
        "scope": {"value": record.scope_id, "ours": record.scope_id == our_scope},
        "mismatches": list(record.mismatches),
    }


def _alive_because(record: IdentityRecord) -> str | None:
    if record.is_recorded_singleton and record.other_root is not None:
        return f"it is the recorded singleton of its own root {record.other_root}: CLIs there point at it"
    if record.is_recorded_singleton:
        return "it is the recorded singleton: CLIs point at it"
    if record.work_in_flight:
        return "it is draining: a batch is in flight, and it never retires mid-upload"
    if record.lease_state is LeaseStatus.LIVE and record.lease_expires_at is not None:
        return (
            f"its lease is live until {to_wire(record.lease_expires_at)}: it governs itself and will retire"
        )
    return None


def _cleanup(record: IdentityRecord) -> tuple[bool, bool, str]:
    why = record.skip_reason.value if record.skip_reason else "every proof holds and its lease has expired"
    if record.cleanup_class is CleanupClass.SAFE_AUTO:
        return True, True, why
    if record.cleanup_class is CleanupClass.OPERATOR_REQUIRED:
        return False, True, f"{why}: only an operator's --force cleans it"
    return False, False, f"{why}: never touched by any cleanup"


def _next(record: IdentityRecord, reuse: Reuse) -> str:
    if record.our_singleton:
        return "synclease sync status" if reuse.would_reuse else "synclease sync start"
    if record.cleanup_class is CleanupClass.SAFE_AUTO:
        return RESET
    if record.skip_reason is SkipReason.MISSING_PID:
        return owner_look(record.port)  # --force would fail it again: there is no PID to act on
    if record.cleanup_class is CleanupClass.OPERATOR_REQUIRED:
        return RESET_FORCE
    return f"lsof -nP -iTCP:{record.port} -sTCP:LISTEN"


def explain_listener(
    target: ExplainTarget,
    record: IdentityRecord,
    our_scope: str,
    reuse: Reuse,
    history: tuple[LedgerEvent, ...],
) -> Explanation:
    return Explanation(
        target=target,
        found=True,
        daemon_family=record.daemon_family,
        instance_id=record.instance_id,
        cleanup_class=record.cleanup_class,
        skip_reason=None if record.skip_reason is None else record.skip_reason.value,
        proofs=proofs_of(record, our_scope),
        alive_because=_alive_because(record),
        reuse=reuse,
        cleanup=_cleanup(record),
        history=history,
        next_command=_next(record, reuse),
    )


def explain_lease(
    target: ExplainTarget, verdict: StaleLease, history: tuple[LedgerEvent, ...]
) -> Explanation:
    """A lease nobody answers for: no process to signal; the file goes only if its holder is gone."""
    why = f"no listener answers for it; its holder is {verdict.reason.value}"
    return Explanation(
        target=target,
        found=True,
        daemon_family="sync",
        instance_id=verdict.instance_id,
        proofs={
            "lease": {"present": True, "state": verdict.lease_state.value, "problem": verdict.problem},
            "holder": None if verdict.holder is None else verdict.holder.value,
        },
        reuse=Reuse(False, "nothing listens for this lease"),
        cleanup=(verdict.stale, verdict.stale, why + ("" if verdict.stale else ": the file is kept")),
        history=history,
        next_command=RESET if verdict.stale else "synclease auth doctor",
    )
