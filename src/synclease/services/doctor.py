"""The doctor document for one root, as ``auth doctor --json`` and the dashboard's ``/api/fleet`` show it.

Reads only: the session summary (never the token), a survey, and this login's queue databases
(read-only, creating no file: :mod:`synclease.adapters.queue_inspect`), rendered by the pure
:func:`synclease.core.report.build`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.ledger_store import LedgerStore
from synclease.adapters.root import DaemonRoot
from synclease.adapters.session_store import load_session
from synclease.core.clock import Clock
from synclease.core.constants import STALL_SECONDS
from synclease.core.fleet import Survey
from synclease.core.history_report import History
from synclease.core.ledger import EventKind, LedgerEvent
from synclease.core.ledger_queries import vanished
from synclease.core.queue_state import QueueFacts
from synclease.core.report import SessionSummary, build
from synclease.core.session import Session, SessionFileError
from synclease.services.dead_letters import inspect_login_queues, login_queues
from synclease.services.survey import survey


def _stored(root: DaemonRoot) -> tuple[Session | None, SessionSummary | None]:
    try:
        session = load_session(root)
    except SessionFileError as exc:
        return None, SessionSummary(problem=exc.reason)
    if session is None:
        return None, None
    return session, SessionSummary(session.server_url, session.principal, session.team, session.auth_scope)


def session_summary(root: DaemonRoot) -> SessionSummary | None:
    """The stored session without its token; ``problem`` set when the file is not trusted."""
    return _stored(root)[1]


def queue_facts(root: DaemonRoot, session: Session | None) -> list[QueueFacts]:
    """Counts or problems of the queues the daemon would read for ``session`` (read-only)."""
    return [facts for facts, _ in inspect_login_queues(root, login_queues(root, session))]


def history(root: DaemonRoot, found: Survey, now: datetime) -> History:
    """The ledger, plus the deaths this survey proves but nobody has recorded yet (shown, not written:
    the doctor only reads; the next sweep records them)."""
    read = LedgerStore(root).read()
    unrecorded = tuple(
        LedgerEvent(
            at=now,
            kind=EventKind.VANISHED,
            instance_id=lease.instance_id,
            pid=lease.pid,
            port=lease.port,
            package_version=lease.package_version,
            reason=reason,
        )
        for lease, reason in vanished(found, read.events)
    )
    return History(read.events + unrecorded, read.skipped)


def render(
    root: DaemonRoot, found: Survey, clock: Clock, stall_seconds: float = STALL_SECONDS
) -> dict[str, Any]:
    session, summary = _stored(root)
    now = clock.now()
    return build(
        found,
        generated_at=now,
        session=summary,
        queues=queue_facts(root, session),
        history=history(root, found, now),
        stall_seconds=stall_seconds,
    )


def doctor_document(
    root: DaemonRoot, clock: Clock, port_range: range, stall_seconds: float = STALL_SECONDS
) -> dict[str, Any]:
    """Survey ``root`` (which must already be checked) and render the document."""
    return render(root, survey(LeaseStore(root), clock, port_range), clock, stall_seconds)
