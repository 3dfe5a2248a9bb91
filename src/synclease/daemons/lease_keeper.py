"""A lease-holding daemon's own lease (the sync daemon's, a declared family's): written at startup,
renewed every heartbeat, dropped at retirement.

Revocation needs positive evidence: the lease file is absent, or names another holder, or the daemon
root itself is gone. Anything else that goes wrong while renewing (disk full, a read-only or
unwritable root, descriptor exhaustion, an unreadable file) is a *transient* fault: the daemon keeps
serving, retries on the next heartbeat, and reports the fault's short code in its health
(``lease.write_error``) until a renewal succeeds again. Never a traceback, never a retirement.

A renewal is an atomic write with fsyncs, so it happens at most once every ``every`` seconds (the
heartbeat), however often the loop steps, and at once when the lease's state changes (``draining``).
"""

from __future__ import annotations

import enum
import errno
import logging
import os

from synclease.adapters.lease_store import LeaseStore
from synclease.core.clock import Clock
from synclease.core.lease import LeaseRecord, LeaseState

log = logging.getLogger("synclease.daemon")
#: A renewal due within this long is done now (the loop's wake-up is never exactly on time).
RENEW_SLACK_SECONDS = 0.01


class Standing(enum.Enum):
    OURS = "ours"
    REVOKED = "revoked"
    ROOT_GONE = "root_gone"


def fault_code(exc: OSError) -> str:
    """``ENOSPC``, ``EROFS``, ``EACCES``, ``EMFILE``…: the short name of an OS error, or its class."""
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


class LeaseKeeper:
    def __init__(self, store: LeaseStore, clock: Clock, every: float = 0.0) -> None:
        self.store = store
        self.clock = clock
        self.every = every
        self.lease: LeaseRecord | None = None
        self._written_at: float | None = None
        #: The short code of the last failed write, None once one succeeds.
        self.write_error: str | None = None

    def write(self, lease: LeaseRecord) -> None:
        """The first write, at startup: a failure here is a failed start (it propagates)."""
        self.store.write(lease)
        self.lease = lease
        self._written_at = self.clock.monotonic()

    def standing(self) -> Standing:
        """Is the lease file still ours? Only positive evidence says no."""
        assert self.lease is not None
        if not os.path.isdir(self.store.root.path):
            return Standing.ROOT_GONE
        entry = self.store.read(self.lease.instance_id)
        if entry.lease is None:
            return Standing.REVOKED if entry.problem == "missing" else Standing.OURS
        same = entry.lease.instance_id == self.lease.instance_id and entry.lease.token == self.lease.token
        return Standing.OURS if same else Standing.REVOKED

    def renew(self, draining: bool) -> Standing:
        """Renew the lease if it is still ours; a failed write is reported, not fatal."""
        standing = self.standing()
        if standing is not Standing.OURS:
            return standing
        assert self.lease is not None
        state: LeaseState | None = "draining" if draining else None
        if not self._due(state):
            return standing
        renewed = self.lease.renewed(self.clock.now(), state)
        try:
            self._written_at = self.clock.monotonic()
            self.store.write(renewed, durable=False)  # a renewal: data fsynced, directory not (ADR 0015)
        except OSError as exc:
            code = fault_code(exc)
            if code != self.write_error:
                log.warning(
                    "lease renewal failed (%s: %s); serving on, retrying each heartbeat", code, exc.strerror
                )
            self.write_error = code
            self.lease = renewed  # what we will try to write next time
            return Standing.OURS
        if self.write_error is not None:
            log.info("lease renewal works again (after %s)", self.write_error)
        self.write_error = None
        self.lease = renewed
        return Standing.OURS

    def _due(self, state: LeaseState | None) -> bool:
        """A write is due: ``every`` seconds have passed since the last attempt (a failed one is
        retried on the same schedule), or the state changes."""
        assert self.lease is not None
        if state is not None and self.lease.state != state:
            return True
        return self.due_in() <= RENEW_SLACK_SECONDS

    def due_in(self) -> float:
        """Seconds until the next renewal is due (the loop wakes by then)."""
        if self._written_at is None:
            return 0.0
        return self._written_at + self.every - self.clock.monotonic()

    def drop(self) -> None:
        """Delete the lease file, only if it still holds this very lease."""
        if self.lease is not None:
            try:
                self.store.delete_own(self.lease)
            except OSError as exc:
                log.warning("could not remove the lease (%s)", fault_code(exc))
