"""One list of reason names (core/reasons.py): every enum that can reach the ledger takes its names
from it, and a name outside it is refused where an event is written (it used to be ``error``)."""

from __future__ import annotations

import pytest

from synclease.core import governor
from synclease.core.classify import TABLE
from synclease.core.fleet import CleanupClass, LeaseVerdictReason
from synclease.core.reasons import LedgerReason, UnknownReasonError, ledger_reason


def test_a_reason_outside_the_closed_set_is_refused_not_recorded_as_error() -> None:
    with pytest.raises(UnknownReasonError, match="'superceded' is not a ledger reason"):
        ledger_reason("superceded")
    assert ledger_reason(None) is None
    assert ledger_reason("idle") is LedgerReason.IDLE


@pytest.mark.parametrize(
    "name",
    [
        *governor.Reason,
        *(row.reason for row in TABLE if row.cleanup_class is CleanupClass.OPERATOR_REQUIRED and row.reason),
        LeaseVerdictReason.HOLDER_DEAD,
        LeaseVerdictReason.PID_REUSED,
        "expired_lease",
        "startup_failed",
        "error",
    ],
)
def test_every_reason_that_reaches_the_ledger_is_in_the_one_list(name: str) -> None:
    assert ledger_reason(name) == name
