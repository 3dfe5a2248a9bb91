"""Cleanup escalation for one proven candidate: polite HTTP retire → SIGTERM → SIGKILL.

The steps are plain logic over injected operations (:class:`Ops`), so the ladder is tested without
real processes or sleeps; :mod:`synclease.adapters.signals` provides the real ones. Before every
signal the target's identity (listener PID + process start time, and our uid) is re-checked and its
port must be inside the family range. The outcome is data.
"""

from __future__ import annotations

import enum
from typing import Protocol

from synclease.core.identity import Start
from synclease.core.record import field, record


class CleanupPath(enum.StrEnum):
    HTTP_RETIRE = "http_retire"
    TERMINATE = "terminate"
    KILL = "kill"

    @property
    def signal_name(self) -> str:
        """The POSIX signal a step sends (``SIGTERM``, ``SIGKILL``); the polite step sends none."""
        return {CleanupPath.TERMINATE: "SIGTERM", CleanupPath.KILL: "SIGKILL"}.get(self, "")


@record
class Target:
    pid: int
    port: int
    start_time: Start
    instance_id: str | None
    #: The lease's control token, for the polite step; None skips it.
    token: str | None = field(repr=False)


@record
class Outcome:
    """``path``: the step after which the process was gone; ``failure``: why it could not be ended;
    ``vetoed``: why the ladder stopped on purpose before a step (the process was left alone)."""

    target: Target
    path: CleanupPath | None
    failure: str | None = None
    vetoed: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.vetoed is None


class Ops(Protocol):
    def retire(self, target: Target) -> bool:
        """Ask politely over HTTP with the token; True if the daemon accepted."""
        ...

    def veto(self, target: Target, step: CleanupPath) -> str | None:
        """A reason not to take ``step`` now (e.g. ``not_ours``, ``lease_renewed``), else None."""
        ...

    def still_same(self, target: Target) -> bool:
        """The OS still shows ``target.pid`` (same start time, our uid) listening on ``target.port``."""
        ...

    def signal(self, target: Target, step: CleanupPath) -> bool:
        """Send the step's signal only to the verified process; False if it could not be sent."""
        ...

    def wait_gone(self, target: Target, timeout: float) -> bool:
        """Wait up to ``timeout`` for the process to exit and the port to close."""
        ...


def escalate(target: Target, family_range: range, ops: Ops, step_timeout: float = 1.0) -> Outcome:
    """Run the ladder; ``path`` is the step after which the process was gone (None: it left by itself)."""
    if target.port not in family_range:
        return Outcome(target, None, "out_of_range")
    last: CleanupPath | None = None
    if target.token is not None:
        if (reason := ops.veto(target, CleanupPath.HTTP_RETIRE)) is not None:
            return Outcome(target, None, vetoed=reason)
        if ops.retire(target):
            last = CleanupPath.HTTP_RETIRE
            if ops.wait_gone(target, step_timeout):
                return Outcome(target, last)
    for step in (CleanupPath.TERMINATE, CleanupPath.KILL):
        if (reason := ops.veto(target, step)) is not None:
            return Outcome(target, None, vetoed=reason)
        if not ops.still_same(target):
            # Not listening any more: usually it is already on its way out (a concurrent sweep such as
            # a `sync start` reaper signalled it, or it retired). Give it the step to finish exiting.
            if ops.wait_gone(target, step_timeout):
                return Outcome(target, last)
            return Outcome(target, None, "identity_changed")
        if ops.signal(target, step):
            last = step
        if ops.wait_gone(target, step_timeout):
            return Outcome(target, last)
    return Outcome(target, None, "survived_kill")
