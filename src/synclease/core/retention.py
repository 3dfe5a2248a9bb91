"""What of ours may be removed so nothing piles up: per-instance daemon logs.

At each spawn the logs of live daemons and the :data:`KEEP_LOGS` most recent others are kept; the
rest go, oldest first. (The ledger, crash reports and each log file bound themselves.)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from synclease.core.record import record

KEEP_LOGS = 20
LOG_PREFIX = "daemon-"
LOG_SUFFIX = ".log"


@record
class LogFile:
    name: str
    mtime: float

    @property
    def instance_id(self) -> str | None:
        """``daemon-<id>.log`` or its rotation ``daemon-<id>.log.1``; None for any other name."""
        stem = self.name.removesuffix(".1")
        if not stem.startswith(LOG_PREFIX) or not stem.endswith(LOG_SUFFIX):
            return None
        return stem[len(LOG_PREFIX) : -len(LOG_SUFFIX)] or None


def logs_to_prune(logs: Sequence[LogFile], live: Collection[str], keep: int = KEEP_LOGS) -> list[str]:
    """The names to remove: every log (and rotation) of an instance that is neither live nor among
    the ``keep`` most recently written others."""
    newest: dict[str, float] = {}
    for log in logs:
        iid = log.instance_id
        if iid is not None:
            newest[iid] = max(newest.get(iid, 0.0), log.mtime)
    others = sorted((iid for iid in newest if iid not in live), key=lambda iid: newest[iid], reverse=True)
    doomed = set(others[keep:])
    return sorted(log.name for log in logs if log.instance_id in doomed)
