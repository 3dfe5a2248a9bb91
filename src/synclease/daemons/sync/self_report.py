"""The sync daemon's ``/api/health`` document (protocol/health-v1.schema.json). Never a secret."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from synclease.core.lease import LeaseRecord
from synclease.daemons.holding import identity_report
from synclease.daemons.sync.wiring import WorkSetup
from synclease.daemons.sync.worker import WorkerStatus


def self_report(
    lease: LeaseRecord,
    started_at: datetime,
    *,
    write_error: str | None,
    status: WorkerStatus,
    in_flight: bool,
    work: WorkSetup,
) -> dict[str, Any]:
    return {
        **identity_report(lease, started_at, write_error),
        "sync": {**status.to_json(), "in_flight": in_flight},
        "auth_scope": lease.auth_scope,
        "server_url": work.server_url,
        "session_id": work.session_id,
        "queue_db_path": lease.queue_db_path,
    }
