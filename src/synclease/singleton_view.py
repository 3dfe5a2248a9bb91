"""Is the recorded singleton alive and who it says it is? Reads the record, its lease, its health."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synclease import httpc
from synclease.clock import Clock
from synclease.lease.codec import LeaseRecord, SingletonRecord, is_expired
from synclease.lease.store import LeaseStore

HEALTH_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class SingletonView:
    record: SingletonRecord
    lease: LeaseRecord
    health: dict[str, Any]

    @property
    def package_version(self) -> str:
        version = self.health.get("package_version")
        return version if isinstance(version, str) else self.lease.package_version


def health_matches_lease(health: Any, lease: LeaseRecord) -> bool:
    """Pure: the self-report names the same instance, scope, pid and port as the lease."""
    if not isinstance(health, dict) or health.get("daemon_family") != lease.family:
        return False
    return (
        health.get("instance_id") == lease.instance_id
        and health.get("scope_id") == lease.scope_id
        and health.get("pid") == lease.pid
        and health.get("port") == lease.port
    )


def live_singleton(
    store: LeaseStore, clock: Clock, timeout: float = HEALTH_TIMEOUT_SECONDS
) -> SingletonView | None:
    """The recorded singleton if its lease is live and its live self-report matches that lease."""
    record = store.read_singleton().record
    if record is None:
        return None
    lease = store.read(record.instance_id).lease
    if lease is None or is_expired(lease, clock.now()) or lease.port != record.port:
        return None
    reply = httpc.get_json(lease.port, "/api/health", timeout)
    if not reply.ok or not health_matches_lease(reply.document, lease):
        return None
    health: dict[str, Any] = reply.document
    return SingletonView(record, lease, health)
