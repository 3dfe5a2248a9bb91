"""The doctor document for one root, as ``auth doctor --json`` and the dashboard's ``/api/fleet`` show it.

Reads only: the session summary (never the token), a survey, and this login's queue databases
(read-only, creating no file: :mod:`synclease.adapters.queue_inspect`), rendered by the pure
:func:`synclease.core.report.build`.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from synclease._version import __version__
from synclease.adapters.fsio import atomic_write
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.ledger_store import LedgerStore
from synclease.adapters.root import DaemonRoot
from synclease.adapters.session_store import load_session
from synclease.core.clock import Clock
from synclease.core.constants import STALL_SECONDS
from synclease.core.errors import BadInputError, SyncleaseError
from synclease.core.fleet import Survey
from synclease.core.history_report import History
from synclease.core.ledger import EventKind, LedgerEvent
from synclease.core.ledger_queries import vanished
from synclease.core.queue_state import QueueFacts
from synclease.core.report import DoctorView, SessionSummary, build
from synclease.core.session import Session, SessionFileError
from synclease.services.history import vanished_evidence
from synclease.services.survey import survey

#: The ``--output`` file: read by node_exporter, which runs as another user.
REPORT_FILE_MODE = 0o644


def _stored(root: DaemonRoot) -> tuple[Session | None, SessionSummary | None]:
    """The stored session, and its summary without the token (``problem`` set when the file is not
    trusted)."""
    try:
        session = load_session(root)
    except SessionFileError as exc:
        return None, SessionSummary(problem=exc.reason)
    if session is None:
        return None, None
    return session, SessionSummary(session.server_url, session.principal, session.team, session.auth_scope)


def queue_facts(root: DaemonRoot, session: Session | None) -> list[QueueFacts]:
    """Counts or problems of the queues the daemon would read for ``session`` (read-only).

    No queue directory, no queue: then the queue modules (sqlite3, hashlib: ~4.5 ms) are not loaded."""
    if not os.path.lexists(root.queue_dir):
        return []
    from synclease.services.dead_letters import inspect_login_queues, login_queues

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
            evidence=vanished_evidence(root, lease),
        )
        for lease, reason in vanished(found, read.events)
    )
    return History(read.events + unrecorded, read.skipped)


def view(root: DaemonRoot, found: Survey, clock: Clock, stall_seconds: float = STALL_SECONDS) -> DoctorView:
    """What the doctor shows for ``found``: the session, the queues and the ledger read beside it."""
    session, summary = _stored(root)
    now = clock.now()
    return DoctorView(
        survey=found,
        generated_at=now,
        session=summary,
        queues=queue_facts(root, session),
        history=history(root, found, now),
        stall_seconds=stall_seconds,
    )


def render(
    root: DaemonRoot, found: Survey, clock: Clock, stall_seconds: float = STALL_SECONDS
) -> dict[str, Any]:
    """The doctor document (``auth doctor --json``, the dashboard's ``/api/fleet``)."""
    return build(view(root, found, clock, stall_seconds))


def metrics(root: DaemonRoot, found: Survey, clock: Clock, stall_seconds: float = STALL_SECONDS) -> str:
    """The same view as :func:`render`, as OpenMetrics text (:mod:`synclease.core.openmetrics`, imported
    here: the JSON and human doctor never load it)."""
    from synclease.core import openmetrics

    return openmetrics.render(view(root, found, clock, stall_seconds), version=__version__)


def doctor_document(
    root: DaemonRoot, clock: Clock, port_range: range, stall_seconds: float = STALL_SECONDS
) -> dict[str, Any]:
    """Survey ``root`` (which must already be checked) and render the document."""
    return render(root, survey(LeaseStore(root), clock, port_range), clock, stall_seconds)


def write_report(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temp file in the same directory (a dot name ending in
    ``.tmp``, which node_exporter's textfile collector skips), then a rename over ``path``. World-readable
    (0644): the collector runs as another user, and the report holds no token, path or principal."""
    if path.is_dir():
        raise BadInputError(
            f"--output {path} is a directory", hint=f"name a file, e.g. {path / 'synclease.prom'}"
        )
    if not path.parent.is_dir():
        raise BadInputError(
            f"the directory of --output {path} does not exist",
            hint="create it, or name a file in another one",
        )
    try:
        atomic_write(path, text.encode("utf-8"), mode=REPORT_FILE_MODE)
    except OSError as exc:
        raise SyncleaseError(
            f"cannot write {path} ({exc.strerror or type(exc).__name__})",
            hint="name a file in a directory you can write, with space left",
        ) from None
