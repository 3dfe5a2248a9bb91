"""The sync daemon's ``/api/health`` document (protocol/health-v1.schema.json). Never a secret."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from synclease.core.clock import to_wire
from synclease.core.constants import SYNC
from synclease.core.lease import LeaseRecord
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
        "daemon_family": SYNC,
        "instance_id": lease.instance_id,
        "scope_id": lease.scope_id,
        "daemon_root": lease.daemon_root,
        "pid": lease.pid,
        "port": lease.port,
        "process_start_time": lease.process_start_time,
        "process_start_ticks": lease.process_start_ticks,
        "boot_id": lease.boot_id,
        "package_version": lease.package_version,
        "protocol_version": lease.protocol_version,
        "started_at": to_wire(started_at),
        "lease": {
            "state": lease.state,
            "renewed_at": to_wire(lease.renewed_at),
            "expires_at": to_wire(lease.expires_at),
            "write_error": write_error,
        },
        "sync": {**status.to_json(), "in_flight": in_flight},
        "auth_scope": lease.auth_scope,
        "server_url": work.server_url,
        "session_id": work.session_id,
        "queue_db_path": lease.queue_db_path,
    }
