"""The fleet's memory, written: one helper that turns what a command or a daemon did into ledger
events (:mod:`synclease.core.ledger`) and appends them (:mod:`synclease.adapters.ledger_store`).

Recording never fails the command or the daemon that records: a ledger that cannot be written (disk
full, a hostile file in its place) costs one warning line, and the caller goes on.
"""

from __future__ import annotations

from typing import Protocol

from synclease.adapters.ledger_store import LedgerStore
from synclease.adapters.log_files import log_tail
from synclease.adapters.root import DaemonRoot
from synclease.core.actor import Actor
from synclease.core.clock import Clock
from synclease.core.family import SYNC_FAMILY
from synclease.core.fleet import Survey
from synclease.core.lease import LeaseRecord
from synclease.core.ledger import EventEvidence, EventKind, LedgerEvent, log_lines
from synclease.core.ledger_queries import vanished
from synclease.core.reasons import LedgerReason


def vanished_evidence(root: DaemonRoot, lease: LeaseRecord) -> EventEvidence:
    """What backs a ``vanished`` event: the last lines of the daemon's log (read, never followed)."""
    tail = log_lines(log_tail(root.log_path(lease.instance_id)))
    return EventEvidence(log_tail=tail or None)


class NamedDaemon(Protocol):
    """What names a daemon in a ledger event: a lease, or a sweep's record of what it cleaned."""

    @property
    def instance_id(self) -> str | None: ...
    @property
    def pid(self) -> int | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def package_version(self) -> str | None: ...


class Recorder:
    def __init__(self, root: DaemonRoot, clock: Clock, by: Actor | None = None) -> None:
        self.root = root
        self.clock = clock
        self.by = by
        self.store = LedgerStore(root)

    def record(
        self,
        kind: EventKind,
        *,
        instance_id: str | None,
        pid: int | None,
        port: int | None,
        package_version: str | None,
        reason: LedgerReason | None = None,
        evidence: EventEvidence | None = None,
        once: bool = False,
    ) -> None:
        if port is not None and not SYNC_FAMILY.owns(port):
            return  # the ledger is the sync family's; a host family's daemons keep none (ADR 0019)
        event = LedgerEvent(
            at=self.clock.now(),
            kind=kind,
            instance_id=instance_id,
            pid=pid,
            port=port,
            package_version=package_version,
            reason=reason,
            by=self.by,
            evidence=evidence or EventEvidence(),
        )
        appended = self.store.append(event, once=once)
        if not appended.ok and appended.problem != "already_ended":
            import logging  # only when a record fails: the read-only commands never log

            logging.getLogger("synclease").warning(
                "ledger: %s event not recorded (%s)", kind.value, appended.one_line()
            )

    def about(
        self,
        daemon: NamedDaemon,
        kind: EventKind,
        reason: LedgerReason | None,
        evidence: EventEvidence | None = None,
        *,
        once: bool = False,
    ) -> None:
        """An event about one daemon, named by what its lease (or a sweep's record of it) says."""
        self.record(
            kind,
            instance_id=daemon.instance_id,
            pid=daemon.pid,
            port=daemon.port,
            package_version=daemon.package_version,
            reason=reason,
            evidence=evidence,
            once=once,
        )

    def vanished(self, found: Survey) -> None:
        """Record, once each, the daemons of this root that died without a word: their lease is
        stale (holder lock free and PID gone or reused) and the ledger has no ending for them."""
        for lease, reason in vanished(found, self.store.read().events):
            self.about(lease, EventKind.VANISHED, reason, vanished_evidence(self.root, lease), once=True)
