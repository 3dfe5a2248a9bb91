"""Escalation ladder over injected operations: no real processes, no real sleeps."""

from __future__ import annotations

from synclease.core.constants import SYNC_PORT_RANGE
from synclease.core.escalate import CleanupPath, Target, escalate
from tests.fakes import ScriptedOps

TARGET = Target(pid=4242, port=9420, start_time=100.0, instance_id="abcdefgh12345678", token="t0ken")


def test_polite_retire_is_enough() -> None:
    ops = ScriptedOps("retire")
    outcome = escalate(TARGET, SYNC_PORT_RANGE, ops)
    assert outcome.path is CleanupPath.HTTP_RETIRE and outcome.ok
    assert ops.log == ["retire"]


def test_ignored_retire_escalates_to_terminate_after_a_check() -> None:
    ops = ScriptedOps("term", accepts_retire=False)
    outcome = escalate(TARGET, SYNC_PORT_RANGE, ops)
    assert outcome.path is CleanupPath.TERMINATE
    assert ops.log == ["retire", "check", "SIGTERM"]


def test_sigterm_ignored_escalates_to_kill_after_another_check() -> None:
    ops = ScriptedOps("kill", accepts_retire=False)
    outcome = escalate(TARGET, SYNC_PORT_RANGE, ops)
    assert outcome.path is CleanupPath.KILL
    assert ops.log == ["retire", "check", "SIGTERM", "check", "SIGKILL"]


def test_survivor_is_a_failure() -> None:
    outcome = escalate(TARGET, SYNC_PORT_RANGE, ScriptedOps(None, accepts_retire=False))
    assert outcome.failure == "survived_kill" and outcome.path is None


def test_identity_change_stops_the_ladder_without_a_signal() -> None:
    ops = ScriptedOps("kill", accepts_retire=False, identity_holds=False)
    outcome = escalate(TARGET, SYNC_PORT_RANGE, ops)
    assert outcome.failure == "identity_changed"
    assert "SIGTERM" not in ops.log and "SIGKILL" not in ops.log


def test_port_outside_the_family_range_is_never_touched() -> None:
    ops = ScriptedOps("retire")
    outcome = escalate(Target(1, 9337, 1.0, None, "t"), SYNC_PORT_RANGE, ops)
    assert outcome.failure == "out_of_range" and ops.log == []


def test_no_token_skips_the_polite_step() -> None:
    ops = ScriptedOps("term")
    outcome = escalate(Target(1, 9420, 1.0, None, None), SYNC_PORT_RANGE, ops)
    assert outcome.path is CleanupPath.TERMINATE and ops.log == ["check", "SIGTERM"]
