"""Cleanup escalation of proven candidates: polite HTTP retire → SIGTERM → SIGKILL, one target or a
whole wave of them at once (:func:`escalate_wave`: each step for every target together, on one shared
deadline per step).

The steps are plain logic over injected operations (:class:`Ops`), so the ladder is tested without
real processes or sleeps; :mod:`synclease.adapters.signals` provides the real ones. Before every
signal the target's identity (listener PID + process start time, and our uid) is re-checked and its
port must be inside the family range. The outcome is data.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
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


class Together(Protocol):
    """The two steps a wave takes for all its targets at once."""

    def retire_all(self, targets: Sequence[Target]) -> list[bool]:
        """Ask every target politely; for each, True if it accepted."""
        ...

    def wait_all_gone(self, targets: Sequence[Target], timeout: float) -> list[bool]:
        """Wait until every target is gone or one shared ``timeout`` has passed; for each, gone?"""
        ...


class OneAtATime:
    """:class:`Together` over plain :class:`Ops`, in turn (for one target it is the same thing)."""

    def __init__(self, ops: Ops) -> None:
        self.ops = ops

    def retire_all(self, targets: Sequence[Target]) -> list[bool]:
        return [self.ops.retire(target) for target in targets]

    def wait_all_gone(self, targets: Sequence[Target], timeout: float) -> list[bool]:
        return [self.ops.wait_gone(target, timeout) for target in targets]


def escalate(target: Target, family_range: range, ops: Ops, step_timeout: float = 1.0) -> Outcome:
    """Run the ladder for one target; ``path`` is the step after which the process was gone (None: it
    left by itself)."""
    return escalate_wave([target], family_range, ops, OneAtATime(ops), step_timeout)[0]


def escalate_wave(
    targets: Sequence[Target], family_range: range, ops: Ops, together: Together, step_timeout: float = 1.0
) -> list[Outcome]:
    """Run the ladder for every target in one wave: ask them all to retire, wait on one shared
    deadline; then SIGTERM every survivor (each after its own veto and identity check), wait on one
    shared deadline; then SIGKILL the rest the same way. A wave costs at most three step timeouts,
    however many targets it has. One outcome per target, in order."""
    wave = _Wave(targets, together, step_timeout)
    live = []
    for i, target in enumerate(targets):
        if target.port not in family_range:
            wave.outcomes[i] = Outcome(target, None, "out_of_range")
        else:
            live.append(i)
    asked = []
    for i in (i for i in live if targets[i].token is not None):
        if (reason := ops.veto(targets[i], CleanupPath.HTTP_RETIRE)) is not None:
            wave.outcomes[i] = Outcome(targets[i], None, vetoed=reason)
        else:
            asked.append(i)
    answers = together.retire_all([targets[i] for i in asked]) if asked else []
    accepted = [i for i, ok in zip(asked, answers, strict=True) if ok]
    wave.last.update(dict.fromkeys(accepted, CleanupPath.HTTP_RETIRE))
    wave.settle(accepted, set())
    for step in (CleanupPath.TERMINATE, CleanupPath.KILL):
        waiting, leaving = [], set()
        for i in (i for i in live if i not in wave.outcomes):
            target = targets[i]
            if (reason := ops.veto(target, step)) is not None:
                wave.outcomes[i] = Outcome(target, None, vetoed=reason)
                continue
            waiting.append(i)
            if not ops.still_same(target):
                # Not listening any more: usually already on its way out (a concurrent sweep signalled
                # it, or it retired). It gets the step's wait to finish exiting, and no signal.
                leaving.add(i)
            elif ops.signal(target, step):
                wave.last[i] = step
        wave.settle(waiting, leaving)
    for i in live:
        wave.outcomes.setdefault(i, Outcome(targets[i], None, "survived_kill"))
    return [wave.outcomes[i] for i in range(len(targets))]


class _Wave:
    """What a wave knows so far: the outcome of each target decided, the last step each one took."""

    def __init__(self, targets: Sequence[Target], together: Together, step_timeout: float) -> None:
        self.targets, self.together, self.step_timeout = targets, together, step_timeout
        self.outcomes: dict[int, Outcome] = {}
        self.last: dict[int, CleanupPath] = {}

    def settle(self, waiting: list[int], leaving: set[int]) -> None:
        """Wait for ``waiting`` on one deadline; record who is gone, and who left the ladder unproven
        (``leaving``: no longer the same listener, and not gone either)."""
        if not waiting:
            return
        gone = self.together.wait_all_gone([self.targets[i] for i in waiting], self.step_timeout)
        for i, went in zip(waiting, gone, strict=True):
            if went:
                self.outcomes[i] = Outcome(self.targets[i], self.last.get(i))
            elif i in leaving:
                self.outcomes[i] = Outcome(self.targets[i], None, "identity_changed")
