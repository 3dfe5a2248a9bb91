"""The sweep's ``lease_renewed`` guard reads proof of life, not the daemon's answer to our retire request.

A stale daemon asked to retire writes its lease once more, in state ``draining``, and then exits. That
write is newer than the survey's read; it must not veto the next step as ``lease_renewed`` (it did: such
a daemon ended in ``skipped[]`` while it was leaving). A ``serving`` renewal still does.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.core.escalate import CleanupPath, Target
from synclease.core.fleet import FleetContext, SkipReason
from synclease.core.record import replace
from synclease.services.sweep import GuardedOps, InFlight
from tests.clocks import FakeClock
from tests.test_classify import make_lease, make_obs, make_report
from tests.test_doctor_schema import survey_of


class _Inner:
    """Every step allowed: only the guard's own veto is under test."""

    def veto(self, target: Target, step: CleanupPath) -> str | None:
        return None


@pytest.mark.parametrize(("state", "vetoed"), [("serving", True), ("draining", False)])
def test_a_draining_write_is_not_a_renewal(tmp_path: Path, state: str, vetoed: bool) -> None:
    clock = FakeClock()
    root = DaemonRoot(tmp_path / "root").prepare()
    store = LeaseStore(root)
    now = clock.now()
    stale = make_lease(
        scope_id=root.scope_id,
        daemon_root=str(root.path),
        acquired_at=now - timedelta(hours=1),
        renewed_at=now - timedelta(minutes=5),
    )
    store.write(stale)
    entries = tuple(store.list())
    ctx = FleetContext(scope_id=root.scope_id, daemon_root=str(root.path), now=now, leases=entries)
    found = survey_of(ctx, make_obs(make_report(scope_id=root.scope_id, daemon_root=str(root.path))))
    [record] = found.records
    assert record.cleanup_class.value == "safe_auto"

    store.write(replace(stale, renewed_at=now, state=state))  # what the daemon wrote after the survey
    guard = GuardedOps(_Inner(), store, found, clock, InFlight.SPARE)  # type: ignore[arg-type]
    assert record.start is not None
    target = Target(record.pid or 0, record.port, record.start, record.instance_id, stale.token)
    expected = SkipReason.LEASE_RENEWED.value if vetoed else None
    assert guard.veto(target, CleanupPath.TERMINATE) == expected
