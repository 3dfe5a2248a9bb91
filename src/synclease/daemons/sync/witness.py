"""What the sync daemon tells the fleet's ledger about itself: that it serves, and why it retired.

It remembers what it will need for the ``retired`` event while the daemon runs: who asked it to
retire and why (a retire request may say: ``operator_stop``, ``replaced``, ``expired_lease``...), and
which instance and generation superseded it.
"""

from __future__ import annotations

from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.core.actor import Actor
from synclease.core.clock import Clock
from synclease.core.lease import LeaseRecord, SingletonRecord
from synclease.core.ledger import EventEvidence, EventKind
from synclease.core.reasons import LedgerReason, ledger_reason
from synclease.services.history import Recorder


class Witness:
    def __init__(self, root: DaemonRoot, clock: Clock) -> None:
        self.root = root
        self.clock = clock
        self.asked_reason: LedgerReason | None = None
        self.asked_by: Actor | None = None
        self.superseded_by: SingletonRecord | None = None

    def asked(self, reason: str | None, by: Actor | None) -> None:
        """A retire request arrived (with its reason and requester, when it gave them)."""
        self.asked_reason, self.asked_by = ledger_reason(reason), by

    def saw(self, record: SingletonRecord | None, me: str) -> None:
        if record is not None and record.instance_id != me:
            self.superseded_by = record

    def _successor(self, me: str, why: LedgerReason | None) -> SingletonRecord | None:
        """Who took over, for ``superseded`` (seen by the governor) and ``replaced`` (a CLI recorded
        its new daemon before asking this one to retire, maybe before the governor's next look)."""
        if why not in (LedgerReason.SUPERSEDED, LedgerReason.REPLACED):
            return None
        if self.superseded_by is None:
            self.saw(LeaseStore(self.root).read_singleton().record, me)
        return self.superseded_by

    def serving(self, lease: LeaseRecord) -> None:
        Recorder(self.root, self.clock).about(lease, EventKind.SERVING, None)

    def retired(
        self, lease: LeaseRecord, reason: str, idle_seconds: float | None, queue_depth: int | None
    ) -> None:
        why = ledger_reason(reason)
        by = None
        if why is LedgerReason.RETIRE_REQUESTED and self.asked_reason is not None:
            why, by = self.asked_reason, self.asked_by
        elif why is LedgerReason.RETIRE_REQUESTED:
            by = self.asked_by
        superseded = self._successor(lease.instance_id, why)
        evidence = EventEvidence(
            idle_seconds=idle_seconds if why is LedgerReason.IDLE else None,
            superseded_by=superseded.instance_id if superseded else None,
            superseded_generation=superseded.generation if superseded else None,
            queue_depth=queue_depth,
        )
        Recorder(self.root, self.clock, by).about(lease, EventKind.RETIRED, why, evidence)
