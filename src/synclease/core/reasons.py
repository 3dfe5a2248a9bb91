"""The one list of reason names: why a daemon retired, was reaped, or its lease was removed.

:class:`LedgerReason` is the closed set the ledger writes and readers accept (``protocol/ledger-v1.md``).
Every other enum that names one of these reasons takes its value from here instead of spelling it
again: the governor's :class:`~synclease.core.governor.Reason`, the classification table's
:class:`~synclease.core.fleet.SkipReason` rows that ``--force`` may override, and the stale-lease
verdicts of :class:`~synclease.core.fleet.LeaseVerdictReason`. So a renamed reason is renamed once,
and :func:`ledger_reason` refuses a name outside the set where an event is written (ADR 0020), instead
of recording it as ``error`` without a word.
"""

from __future__ import annotations

import enum


class LedgerReason(enum.StrEnum):
    """Why: the governor's reasons, the CLI's, the reaper's (``expired_lease``, the ``--force``d skip
    reasons, the stale-lease verdicts) and a failed start's. A closed set: readers refuse others."""

    SUPERSEDED = "superseded"
    IDLE = "idle"
    MEMORY = "memory"
    LEASE_REVOKED = "lease_revoked"
    ROOT_GONE = "root_gone"
    SIGNAL = "signal"
    RETIRE_REQUESTED = "retire_requested"
    SHUTDOWN_REQUESTED = "shutdown_requested"
    OPERATOR_STOP = "operator_stop"
    REPLACED = "replaced"
    ERROR = "error"
    STARTUP_FAILED = "startup_failed"
    EXPIRED_LEASE = "expired_lease"
    HOLDER_DEAD = "holder_dead"
    PID_REUSED = "pid_reused"
    MISSING_PID = "missing_pid"
    CROSS_ROOT = "cross_root"
    NO_LEASE = "no_lease"
    UNRESPONSIVE = "unresponsive"
    IDENTITY_MISMATCH = "identity_mismatch"
    LEASE_LIVE = "lease_live"


class UnknownReasonError(ValueError):
    """A reason outside :class:`LedgerReason` was about to be written: a bug in the caller."""


def ledger_reason(value: str | None) -> LedgerReason | None:
    """``value`` (a governor, reaper or CLI reason) as a ledger reason; None stays None. A name outside
    the closed set raises :class:`UnknownReasonError` (it used to be recorded as ``error``)."""
    if value is None:
        return None
    try:
        return LedgerReason(value)
    except ValueError:
        raise UnknownReasonError(
            f"{value[:40]!r} is not a ledger reason (one of {', '.join(LedgerReason)})"
        ) from None
