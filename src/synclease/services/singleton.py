"""Is the recorded singleton alive and who it says it is? Reads the record, its lease, its health.

Lock-free: two small file reads and one ``GET /api/health``. The agreement rule (instance, scope, pid,
port and process start time) is :func:`synclease.core.health.mismatches`.
"""

from __future__ import annotations

from synclease.adapters import http_client
from synclease.adapters.lease_store import LeaseStore
from synclease.core.clock import Clock
from synclease.core.constants import HEALTH_TIMEOUT_SECONDS
from synclease.core.health import HealthReport, agrees, lease_claim, parse_health
from synclease.core.lease import LeaseRecord, SingletonRecord, is_expired
from synclease.core.record import record


@record
class SingletonView:
    record: SingletonRecord
    lease: LeaseRecord
    health: HealthReport

    @property
    def package_version(self) -> str:
        return self.health.package_version or self.lease.package_version


def live_health(lease: LeaseRecord, timeout: float = HEALTH_TIMEOUT_SECONDS) -> HealthReport | None:
    """The daemon's live self-report if it agrees with ``lease``, else None."""
    reply = http_client.get_json(lease.port, "/api/health", timeout)
    report = parse_health(reply.document) if reply.ok else None
    return report if report is not None and agrees(report, lease_claim(lease)) else None


def live_singleton(
    store: LeaseStore, clock: Clock, timeout: float = HEALTH_TIMEOUT_SECONDS
) -> SingletonView | None:
    """The recorded singleton if its lease is live and its live self-report agrees with that lease."""
    record = store.read_singleton().record
    if record is None:
        return None
    lease = store.read(record.instance_id).lease
    if lease is None or is_expired(lease, clock.now()) or lease.port != record.port:
        return None
    health = live_health(lease, timeout)
    return None if health is None else SingletonView(record, lease, health)
