"""Pure parts of ``explain`` (target parsing), log retention, and the stalled-work rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from synclease.core.errors import BadInputError
from synclease.core.explain import parse_target
from synclease.core.health import HealthReport
from synclease.core.history_report import stalled
from synclease.core.retention import LogFile, logs_to_prune


@pytest.mark.parametrize(
    ("text", "port", "pid", "prefix"),
    [
        ("9412", 9412, 9412, "9412"),  # a port, or a PID when nothing listens there, or an id's start
        ("9260", 9260, 9260, "9260"),  # a dashboard port
        ("4242", None, 4242, "4242"),
        (" 77 ", None, 77, None),
        ("12345678901234", None, None, "12345678901234"),  # no PID is that large: an all-digit id
        ("3f9a1c", None, None, "3f9a1c"),
        ("abcd-efgh_12", None, None, "abcd-efgh_12"),
    ],
)
def test_targets(text: str, port: int | None, pid: int | None, prefix: str | None) -> None:
    target = parse_target(text)
    assert (target.port, target.pid, target.prefix) == (port, pid, prefix)


@pytest.mark.parametrize("text", ["", "0", "abc", "../etc", "x" * 65, "12 34", "9" * 65, "-5"])
def test_malformed_targets_are_bad_input(text: str) -> None:
    with pytest.raises(BadInputError):
        parse_target(text)


def test_retention_keeps_live_and_the_newest_others() -> None:
    logs = [LogFile(f"daemon-{n:016x}.log", float(n)) for n in range(30)]
    logs.append(LogFile("daemon-0000000000000001.log.1", 1.0))
    logs.append(LogFile("crash-x.txt", 0.0))
    doomed = logs_to_prune(logs, live={f"{0:016x}"}, keep=20)
    kept_others = {f"daemon-{n:016x}.log" for n in range(10, 30)}
    assert set(doomed) == {log.name for log in logs} - kept_others - {f"daemon-{0:016x}.log", "crash-x.txt"}
    assert "daemon-0000000000000001.log.1" in doomed  # a rotation goes with its log


def test_stalled_work() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    old = now - timedelta(hours=2)
    assert stalled(HealthReport(queue_depth=3, last_sync=old), now, 3600)
    assert not stalled(HealthReport(queue_depth=0, last_sync=old), now, 3600)
    assert not stalled(HealthReport(queue_depth=3, last_sync=now - timedelta(minutes=5)), now, 3600)
    assert stalled(HealthReport(queue_depth=3, started_at=old), now, 3600)  # never uploaded since start


def test_explain_never_advises_force_for_an_owner_it_cannot_see() -> None:
    """missing_pid: --reset --force would fail it again, so the next step is the look at its owner."""
    from synclease.core.classify import classify
    from synclease.core.explain import Reuse, explain_listener
    from synclease.core.fleet import FleetContext, Listener, Observation

    report = HealthReport(
        family="sync", sync_like=True, instance_id="inst-1", scope_id="s", pid=4242, port=9412
    )
    ctx = FleetContext(scope_id="s", daemon_root="/r", now=datetime(2026, 12, 6, tzinfo=UTC))
    record = classify(Observation(Listener(9412), report), ctx)
    assert record.skip_reason is not None and record.skip_reason.value == "missing_pid"
    verdict = explain_listener(parse_target("9412"), record, "s", Reuse(False, "no"), ())
    assert verdict.next_command == "sudo lsof -nP -iTCP:9412 -sTCP:LISTEN"
