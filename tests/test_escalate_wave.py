"""One wave: every step for all targets together, one shared deadline per step (issue #19; ADR 0015).

Scripted processes and a fake clock: no real processes, no sleeps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from synclease.adapters.signals import InParallel
from synclease.core.constants import SYNC_PORT_RANGE
from synclease.core.escalate import CleanupPath, Target, escalate_wave
from synclease.core.identity import StartStamp
from tests.clocks import FakeClock


def _target(pid: int, token: str | None = "t") -> Target:
    return Target(pid, 9400 + pid, StartStamp(1.0), f"inst-{pid}", token)


@dataclass
class Fleet:
    """Scripted processes by PID: ``leaves_on`` says which step makes each one go (None: nothing)."""

    leaves_on: dict[int, str | None]
    same: dict[int, bool] = field(default_factory=dict)
    vetoes: dict[tuple[int, CleanupPath], str] = field(default_factory=dict)
    gone: set[int] = field(default_factory=set)
    log: list[str] = field(default_factory=list)

    def veto(self, target: Target, step: CleanupPath) -> str | None:
        return self.vetoes.get((target.pid, step))

    def retire(self, target: Target) -> bool:
        self.log.append(f"retire {target.pid}")
        accepted = self.leaves_on[target.pid] == "retire"
        if accepted:
            self.gone.add(target.pid)
        return accepted

    def still_same(self, target: Target) -> bool:
        return self.same.get(target.pid, True) and target.pid not in self.gone

    def signal(self, target: Target, step: CleanupPath) -> bool:
        self.log.append(f"{step.signal_name} {target.pid}")
        if (step, self.leaves_on[target.pid]) in (
            (CleanupPath.TERMINATE, "term"),
            (CleanupPath.KILL, "kill"),
        ):
            self.gone.add(target.pid)
        return True

    def wait_gone(self, target: Target, timeout: float) -> bool:
        return target.pid in self.gone


@dataclass
class Shared:
    """The wave's ``Together``, recording each shared wait."""

    fleet: Fleet
    waits: list[tuple[list[int], float]] = field(default_factory=list)

    def retire_all(self, targets: Sequence[Target]) -> list[bool]:
        return [self.fleet.retire(t) for t in targets]

    def wait_all_gone(self, targets: Sequence[Target], timeout: float) -> list[bool]:
        self.waits.append(([t.pid for t in targets], timeout))
        self.fleet.log.append("wait")
        return [self.fleet.wait_gone(t, timeout) for t in targets]


def test_each_step_goes_to_every_survivor_together_with_one_deadline() -> None:
    fleet = Fleet({1: "retire", 2: "term", 3: "kill", 4: "term", 5: "kill"})
    together = Shared(fleet)
    targets = [_target(pid) for pid in (1, 2, 3, 4, 5)]
    outcomes = escalate_wave(targets, SYNC_PORT_RANGE, fleet, together, 1.0)
    assert [o.path for o in outcomes] == [
        CleanupPath.HTTP_RETIRE,
        CleanupPath.TERMINATE,
        CleanupPath.KILL,
        CleanupPath.TERMINATE,
        CleanupPath.KILL,
    ]
    assert fleet.log == [
        *(f"retire {pid}" for pid in (1, 2, 3, 4, 5)),
        "wait",
        *(f"SIGTERM {pid}" for pid in (2, 3, 4, 5)),
        "wait",
        "SIGKILL 3",
        "SIGKILL 5",
        "wait",
    ]
    assert together.waits == [([1], 1.0), ([2, 3, 4, 5], 1.0), ([3, 5], 1.0)]


def test_a_wave_keeps_every_per_target_rule() -> None:
    fleet = Fleet(
        {1: None, 2: "term", 3: None, 4: "kill"},
        same={3: False},
        vetoes={(2, CleanupPath.HTTP_RETIRE): "lease_renewed", (4, CleanupPath.KILL): "work_in_flight"},
    )
    targets = [
        _target(1),
        _target(2),
        _target(3, token=None),
        _target(4),
        Target(9, 9337, StartStamp(1.0), None, "t"),
    ]
    outcomes = escalate_wave(targets, SYNC_PORT_RANGE, fleet, Shared(fleet), 1.0)
    assert [(o.path, o.failure, o.vetoed) for o in outcomes] == [
        (None, "survived_kill", None),
        (None, None, "lease_renewed"),  # vetoed before the polite step: left alone
        (None, "identity_changed", None),  # not the same listener: never signalled
        (None, None, "work_in_flight"),
        (None, "out_of_range", None),
    ]
    assert "SIGTERM 3" not in fleet.log and not any(line.endswith(" 9") for line in fleet.log)
    assert "SIGKILL 4" not in fleet.log


def test_in_parallel_waits_once_for_everyone_through_the_clock() -> None:
    clock = FakeClock()
    fleet = Fleet({1: None, 2: None, 3: "term"}, gone={3})
    gone = InParallel(fleet, clock, interval=0.02).wait_all_gone([_target(1), _target(2), _target(3)], 1.0)
    assert gone == [False, False, True]
    assert sum(clock.slept) == pytest.approx(1.0)  # one shared deadline, not one per target


def test_in_parallel_asks_everyone_and_returns_when_all_are_gone() -> None:
    clock = FakeClock()
    fleet = Fleet({1: "retire", 2: "retire", 3: None})
    together = InParallel(fleet, clock)
    assert together.retire_all([_target(1), _target(2), _target(3)]) == [True, True, False]
    assert together.wait_all_gone([_target(1), _target(2)], 1.0) == [True, True]
    assert clock.slept == []
