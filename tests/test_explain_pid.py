"""``synclease explain PID`` never misses a daemon that is there (issue 20).

The cause of the reported 1-in-4 failure (exit 1, "nothing matches") with several daemons running: a
PID inside a family's port range (9237-9336, 9400-9449: common on a fresh machine or container, where
PIDs are small) was read as a port, and nothing listened on that port. A number in a port range now
names the listener on that port if there is one, else the process with that PID.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.root import DaemonRoot
from synclease.core.classify import classify
from synclease.core.explain import parse_target
from synclease.core.fleet import IdentityRecord
from synclease.core.record import replace
from synclease.services.explain import explain, find_record
from tests.conftest import Sandbox
from tests.test_classify import make_ctx, make_obs, make_report
from tests.test_reaper_live import serving, spawn


def record_on(port: int, pid: int) -> IdentityRecord:
    return replace(classify(make_obs(make_report()), make_ctx()), port=port, pid=pid)


def test_two_hundred_pids_that_look_like_ports_are_all_found() -> None:
    rng = random.Random(20)
    for _ in range(200):
        ports = rng.sample(range(9401, 9449), 4)
        pids = rng.sample([*range(9230, 9460), *range(20_000, 20_100)], 4)
        records = [record_on(port, pid) for port, pid in zip(ports, pids, strict=True)]
        for record in records:
            found = find_record(records, parse_target(str(record.pid)))
            assert found is not None
            assert found.pid == record.pid or found.port == record.pid  # a listener on that port wins


def test_an_all_digit_instance_id_prefix_finds_its_daemon() -> None:
    record = replace(record_on(9410, 5000), instance_id="1234567890abcdef")
    assert find_record([record], parse_target("12345678")) is record


def test_a_port_still_names_its_listener_before_a_pid_of_the_same_number() -> None:
    on_port, with_pid = record_on(9410, 5000), record_on(9411, 9410)
    assert find_record([with_pid, on_port], parse_target("9410")) is on_port
    assert find_record([with_pid], parse_target("9410")) is with_pid


@pytest.mark.live
def test_explain_pid_with_several_daemons_two_hundred_runs_in_a_row(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    box = sandbox_factory("fleet")
    procs = []
    for port in box.ports[:3]:
        proc = spawn(
            box, "--managed", env={"SYNCLEASE_PORT_RANGE": f"{port}-{port}", "SYNCLEASE_PORT_HINT": str(port)}
        )
        serving(box, proc)
        procs.append(proc)
    root = DaemonRoot(box.root.resolve())
    failures = []
    for run in range(200):
        proc = procs[run % len(procs)]
        verdict = explain(root, SYSTEM_CLOCK, box.ports, "0.1.0", parse_target(str(proc.pid)))
        if not verdict.found:
            failures.append(run)
    assert failures == [], f"explain missed a live daemon in runs {failures}"
