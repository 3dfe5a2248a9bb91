"""adapters/procfs: a PID as seen from here, read from /proc without psutil (ADR 0017)."""

from __future__ import annotations

import os
import sys

import pytest

from synclease.adapters import procfs
from synclease.adapters.process import own_start
from synclease.core.identity import StartStamp
from synclease.services.reuse import EnsureResult

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")


@linux
def test_this_process_is_itself_here() -> None:
    start = own_start()
    assert procfs.same_process_here(os.getpid(), start) is True
    assert procfs.pid_here(os.getpid(), start) == os.getpid()  # NSpid ends in its own PID


@linux
def test_another_start_or_boot_is_not_that_process() -> None:
    start = own_start()
    assert start.ticks is not None
    later = StartStamp(start.epoch, start.ticks + 1, start.boot_id)
    assert procfs.same_process_here(os.getpid(), later) is False
    assert procfs.pid_here(os.getpid(), later) is None
    other_boot = StartStamp(start.epoch, start.ticks, "another-boot")
    assert procfs.same_process_here(os.getpid(), other_boot) is False
    assert procfs.pid_here(os.getpid(), other_boot) is None


def test_without_kernel_ticks_it_cannot_tell() -> None:
    wall_clock_only = StartStamp(own_start().epoch)
    assert procfs.same_process_here(os.getpid(), wall_clock_only) is None
    assert procfs.pid_here(os.getpid(), wall_clock_only) is None


def test_the_json_shape_grows_only_when_the_pid_is_not_the_reported_one() -> None:
    plain = EnsureResult(41, 9401, "inst", "0.1.0", True)
    assert set(plain.to_json()) == {"pid", "port", "instance_id", "package_version", "reused"}
    contained = EnsureResult(None, 9401, "inst", "0.1.0", True, reported_pid=3, pid_note="why")
    assert contained.to_json() == {
        "pid": None,
        "port": 9401,
        "instance_id": "inst",
        "package_version": "0.1.0",
        "reused": True,
        "reported_pid": 3,
        "pid_note": "why",
    }
