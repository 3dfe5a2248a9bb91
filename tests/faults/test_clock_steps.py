"""Wall-clock steps, for real: libfaketime (Debian ``faketime``; ``.ci/run`` installs it) moves one
process's wall clock while its monotonic clock runs on, as an NTP step or a fast RTC would.

* the daemon's clock stepped back: it never revokes or retires itself and its lease stays readable;
* the reaper's clock stepped forward past the TTL: a daemon that keeps renewing is never signalled,
  and one with a batch in flight is never signalled by the startup reaper;
* process identity does not move with the clock (kernel start ticks + boot id).
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from synclease.adapters import process
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.core.clock import from_wire
from synclease.core.identity import StartStamp, same_start
from tests.conftest import Sandbox, get_health, hold_a_batch, lease_of, login, pid_alive, wait_for
from tests.faults.helpers import serving_daemon
from tests.receiver import Receiver

pytestmark = pytest.mark.live

FOUND = sorted(
    glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib/faketime/libfaketime.so.1")
)
LIBFAKETIME = FOUND[0] if FOUND else None
needs_faketime = pytest.mark.skipif(
    LIBFAKETIME is None, reason="libfaketime is not installed (Debian package faketime; .ci/run installs it)"
)


def stepped(stamp_file: Path) -> dict[str, str]:
    """A process whose wall clock follows the offset in ``stamp_file`` (re-read on every call) while
    its monotonic clock runs on untouched, as under an NTP step."""
    assert LIBFAKETIME is not None
    return {
        "LD_PRELOAD": LIBFAKETIME,
        "FAKETIME_TIMESTAMP_FILE": str(stamp_file),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def ahead(offset: str) -> dict[str, str]:
    """A process living ``offset`` ahead from its start. Both clocks move by the same constant (the
    monotonic one too: libfaketime 0.9.10's ``clock_nanosleep`` fails with EINVAL when only the wall
    clock is faked, and a constant offset changes no interval)."""
    assert LIBFAKETIME is not None
    return {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": offset}


def readable_lease(box: Sandbox, instance_id: str) -> Any:
    return LeaseStore(DaemonRoot(box.root.resolve())).read(instance_id)


@needs_faketime
def test_daemon_clock_stepped_back_keeps_serving_and_its_lease_readable(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    stamp = tmp_path / "faketime"
    stamp.write_text("+0\n")
    proc, lease = serving_daemon(sandbox, env=stepped(stamp))
    instance_id = lease["instance_id"]
    stamp.write_text("-1h\n")  # the step: its wall clock goes back an hour, now

    def stepped_renewal() -> bool:
        current = lease_of(sandbox, instance_id)
        return current is not None and from_wire(current["renewed_at"]) < datetime.now(UTC) - timedelta(
            minutes=50
        )

    wait_for(stepped_renewal)
    entry = readable_lease(sandbox, instance_id)
    assert entry.lease is not None, entry.problem  # renewed_at >= acquired_at still: re-acquired at the step
    assert entry.lease.acquired_at <= entry.lease.renewed_at
    wait_for(lambda: from_wire(lease_of(sandbox, instance_id)["renewed_at"]) > entry.lease.renewed_at)  # type: ignore[index]
    doc = sandbox.cli_json("auth", "doctor")
    assert "unreadable_lease" not in {f["id"] for f in doc["findings"]}
    assert proc.poll() is None and get_health(lease["port"]) is not None
    log = proc.log_path.read_text()  # type: ignore[attr-defined]
    assert "retiring" not in log and "Traceback" not in log


def managed_daemon(box: Sandbox, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """A daemon nobody recorded (not the singleton): as far as a reaper can tell, an orphan."""
    proc = box.popen_logged([sys.executable, "-m", "synclease.daemons.sync", "--managed"], "managed", env)
    lease = wait_for(
        lambda: next((x for x in box.leases() if x["pid"] == proc.pid and get_health(x["port"])), None)
    )
    return proc, lease


@needs_faketime
def test_reaper_clock_forward_never_signals_a_daemon_that_keeps_renewing(sandbox: Sandbox) -> None:
    proc, lease = managed_daemon(sandbox, {"SYNCLEASE_FAILPOINTS": "ignore_retire"})
    # The reaper's clock is an hour ahead: the lease looks long expired, the daemon looks safe_auto.
    doc = sandbox.cli_json("auth", "doctor", "--reset", env=ahead("+1h"))
    [orphan] = doc["orphans"] if doc["orphans"] else [None]
    result = doc["reset_result"]
    assert result["swept"] == [] and result["failed"] == []
    assert [(s["pid"], s["skip_reason"]) for s in result["skipped"]] == [(proc.pid, "lease_renewed")]
    assert orphan is None or orphan["pid"] == proc.pid
    assert proc.poll() is None and get_health(lease["port"]) is not None
    assert "retiring" not in proc.log_path.read_text()  # type: ignore[attr-defined]


@needs_faketime
def test_startup_reaper_with_a_forward_clock_never_signals_work_in_flight(
    sandbox: Sandbox, rx: Receiver
) -> None:
    login(sandbox, rx)
    busy = hold_a_batch(sandbox, rx)["daemon"]
    # `sync start` an hour ahead: the singleton's lease looks expired, so it spawns a new daemon and
    # its startup reaper sees the busy one as an expired-lease orphan.
    new = sandbox.cli_json("sync", "start", env=ahead("+1h"))
    assert new["reused"] is False and new["pid"] != busy["pid"]
    assert pid_alive(busy["pid"]) and get_health(busy["port"]) is not None
    assert rx.accepted_total == 0  # still held: the batch was in flight through all of it
    rx.release()
    assert rx.wait_for(lambda: rx.accepted_total >= 1)  # nothing lost
    wait_for(lambda: not pid_alive(busy["pid"]), timeout=30)  # then it retires by itself


def test_identity_is_the_kernels_start_not_the_wall_clock(sandbox: Sandbox) -> None:
    proc, lease = serving_daemon(sandbox)
    ticks = process.start_ticks(proc.pid)
    assert ticks is not None and lease["process_start_ticks"] == ticks
    assert lease["boot_id"] == process.boot_id() and lease["boot_id"]
    recorded = StartStamp(lease["process_start_time"], lease["process_start_ticks"], lease["boot_id"])
    # A reader whose idea of the boot time moved by an hour (a stepped clock) still sees the same start.
    observed = StartStamp(recorded.epoch + 3600, ticks, process.boot_id())
    assert same_start(recorded, observed)
    assert not same_start(recorded, StartStamp(recorded.epoch, ticks + 1, process.boot_id()))
    assert not same_start(recorded, StartStamp(recorded.epoch, ticks, "another-boot"))
    assert same_start(lease["process_start_time"], recorded.epoch + 0.01)  # no ticks known: tolerance
    assert os.path.exists(f"/proc/{proc.pid}/stat")
