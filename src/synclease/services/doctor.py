"""The doctor document for one root, as ``auth doctor --json`` and the dashboard's ``/api/fleet`` show it.

Reads only: the session summary (never the token) and a survey, rendered by the pure
:func:`synclease.core.report.build`.
"""

from __future__ import annotations

from typing import Any

from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.adapters.session_store import load_session
from synclease.core.clock import Clock
from synclease.core.fleet import Survey
from synclease.core.report import SessionSummary, build
from synclease.core.session import SessionFileError
from synclease.services.survey import survey


def session_summary(root: DaemonRoot) -> SessionSummary | None:
    """The stored session without its token; ``problem`` set when the file is not trusted."""
    try:
        session = load_session(root)
    except SessionFileError as exc:
        return SessionSummary(problem=exc.reason)
    if session is None:
        return None
    return SessionSummary(session.server_url, session.principal, session.team, session.auth_scope)


def render(root: DaemonRoot, found: Survey, clock: Clock) -> dict[str, Any]:
    return build(found, generated_at=clock.now(), session=session_summary(root))


def doctor_document(root: DaemonRoot, clock: Clock, port_range: range) -> dict[str, Any]:
    """Survey ``root`` (which must already be checked) and render the document."""
    return render(root, survey(LeaseStore(root), clock, port_range), clock)
