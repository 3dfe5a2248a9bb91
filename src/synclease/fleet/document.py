"""The doctor document for one root, as ``auth doctor --json`` and the dashboard's ``/api/fleet`` show it.

Reads only: the session summary (never the token), the singleton's auth state from its health, and a
survey rendered by the pure :func:`synclease.fleet.report.build`. No typer/rich imports.
"""

from __future__ import annotations

from typing import Any

from synclease import httpc
from synclease.clock import Clock
from synclease.fleet import report
from synclease.fleet.survey import Survey, survey
from synclease.lease.store import LeaseStore
from synclease.root import DaemonRoot
from synclease.work.session import SessionFileError, load_session

HEALTH_TIMEOUT_SECONDS = 0.5


def session_summary(root: DaemonRoot) -> dict[str, Any] | None:
    """The stored session without its token; ``{"problem": reason}`` when the file is not trusted."""
    try:
        session = load_session(root)
    except SessionFileError as exc:
        return {"problem": exc.reason}
    if session is None:
        return None
    return {
        "server_url": session.server_url,
        "principal": session.principal,
        "team": session.team,
        "auth_scope": session.auth_scope,
    }


def auth_problem(found: Survey) -> bool:
    """Whether the live singleton says the server rejected its session token."""
    single = found.singleton
    if single is None:
        return False
    reply = httpc.get_json(single.port, "/api/health", timeout=HEALTH_TIMEOUT_SECONDS)
    sync = reply.document.get("sync") if reply.ok and isinstance(reply.document, dict) else None
    return bool(isinstance(sync, dict) and sync.get("auth_problem"))


def render(root: DaemonRoot, found: Survey, clock: Clock) -> dict[str, Any]:
    return report.build(
        found, generated_at=clock.now(), session=session_summary(root), auth_problem=auth_problem(found)
    )


def doctor_document(root: DaemonRoot, clock: Clock, port_range: range) -> dict[str, Any]:
    """Survey ``root`` (which must already be checked) and render the document."""
    return render(root, survey(LeaseStore(root), clock, port_range), clock)
