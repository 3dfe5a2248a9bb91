"""Escalation operations for tests, in one place: a scripted process (no real processes, no sleeps)
and a recorder around the real operations (real daemons, with one PID made untouchable or a hook)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from synclease.adapters.signals import RealOps
from synclease.core.escalate import CleanupPath, Target


@dataclass
class ScriptedOps:
    """A scripted process: which step makes it go away, and whether its identity holds.

    ``log`` records ``retire``, ``check`` and the signal names sent; ``signalled`` the (pid, step)
    pairs. With ``gone_when_signalled`` any signal makes it leave (a dashboard cleanup's fake)."""

    exits_after: str | None = None  # "retire", "term", "kill" or None (survives everything)
    accepts_retire: bool = True
    identity_holds: bool = True
    gone_when_signalled: bool = False
    #: A process that survives everything: still there after every step, whatever was sent.
    never_gone: bool = False
    log: list[str] = field(default_factory=list)
    signalled: list[tuple[int, CleanupPath]] = field(default_factory=list)
    gone: bool = False

    def veto(self, target: Target, step: CleanupPath) -> str | None:
        return None

    def retire(self, target: Target) -> bool:
        self.log.append("retire")
        if self.accepts_retire and self.exits_after == "retire":
            self.gone = True
        return self.accepts_retire

    def still_same(self, target: Target) -> bool:
        self.log.append("check")
        return self.identity_holds and not (self.gone and not self.never_gone)

    def signal(self, target: Target, step: CleanupPath) -> bool:
        self.log.append(step.signal_name)
        self.signalled.append((target.pid, step))
        if self.gone_when_signalled or (step.name, self.exits_after) in (
            ("TERMINATE", "term"),
            ("KILL", "kill"),
        ):
            self.gone = True
        return True

    def wait_gone(self, target: Target, timeout: float) -> bool:
        return self.gone and not self.never_gone


class RecordingOps:
    """The real operations, recording every step; signals to ``refuse_pid`` are refused (a process
    nothing can end, like another user's); ``after_retire`` runs after each polite step."""

    def __init__(
        self, refuse_pid: int | None = None, after_retire: Callable[[Target], None] | None = None
    ) -> None:
        self.real = RealOps()
        self.refuse_pid = refuse_pid
        self.after_retire = after_retire
        self.signals: list[CleanupPath] = []
        self.refused: list[CleanupPath] = []

    def veto(self, target: Target, step: CleanupPath) -> str | None:
        return self.real.veto(target, step)

    def retire(self, target: Target) -> bool:
        accepted = self.real.retire(target)
        if self.after_retire is not None:
            self.after_retire(target)
        return accepted

    def still_same(self, target: Target) -> bool:
        return self.real.still_same(target)

    def signal(self, target: Target, step: CleanupPath) -> bool:
        if target.pid == self.refuse_pid:
            self.refused.append(step)
            return False
        self.signals.append(step)
        return self.real.signal(target, step)

    def wait_gone(self, target: Target, timeout: float) -> bool:
        return self.real.wait_gone(target, timeout)
