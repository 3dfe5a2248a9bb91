"""Disk full and read-only root, for real: the daemon root is a small tmpfs (root only, as CI is).

A daemon whose lease cannot be written keeps serving, retries every heartbeat, reports the fault in
``/api/health`` (``lease.write_error``), and ``auth doctor`` says ``root_unwritable`` with its fix; once
there is space again the lease is renewed on the next heartbeat. No traceback, no retirement.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Sandbox, get_health, renewed_past, wait_for
from tests.faults.helpers import serving_daemon

pytestmark = pytest.mark.live

TMPFS_SIZE = "4m"


@pytest.fixture
def tmpfs_root(sandbox: Sandbox) -> Iterator[Path]:
    """Mount a small tmpfs as the sandbox's daemon root; unmounted after its daemons are reaped."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    root = sandbox.root
    root.mkdir(parents=True, mode=0o700)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(root)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield root
    finally:
        sandbox.reap()
        subprocess.run(["umount", str(root)], check=False)
        if subprocess.run(["mountpoint", "-q", str(root)], check=False).returncode == 0:
            subprocess.run(["umount", "-l", str(root)], check=False)


def fill(root: Path) -> Path:
    """Write a filler file until the filesystem is full."""
    filler = root / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass  # full
    finally:
        os.close(fd)
    return filler


def write_error(port: int) -> str | None:
    health = get_health(port)
    assert health is not None, "the daemon stopped answering"
    value: str | None = health["lease"].get("write_error")
    return value


def finding_ids(box: Sandbox) -> dict[str, str]:
    doc = box.cli_json("auth", "doctor")
    return {f["id"]: f["remediation"]["command"] for f in doc["findings"]}


def test_disk_full_then_space_again(sandbox: Sandbox, tmpfs_root: Path) -> None:
    proc, lease = serving_daemon(sandbox)
    port = lease["port"]
    filler = fill(tmpfs_root)
    wait_for(lambda: write_error(port) == "ENOSPC")
    # Still serving, several heartbeats later, and the doctor names the fault and its fix.
    wait_for(lambda: proc.poll() is None and get_health(port) is not None)
    findings = finding_ids(sandbox)
    assert findings["root_unwritable"].startswith("df -h -- ")
    filler.unlink()
    wait_for(lambda: write_error(port) is None)
    renewed_past(sandbox, lease["instance_id"], 0.5)
    assert proc.poll() is None
    log = proc.log_path.read_text()  # type: ignore[attr-defined]
    assert "lease renewal failed (ENOSPC" in log and "lease renewal works again" in log
    assert "Traceback" not in log and "retiring" not in log
    assert "root_unwritable" not in finding_ids(sandbox)


def test_read_only_root_then_writable_again(sandbox: Sandbox, tmpfs_root: Path) -> None:
    proc, lease = serving_daemon(sandbox)
    port = lease["port"]
    # The daemon's lease directory goes read-only under it: a bind mount of the directory over itself
    # (the holder lock the daemon keeps open stays on the mount below), remounted read-only.
    leases = tmpfs_root / "leases" / "sync"
    subprocess.run(["mount", "--bind", str(leases), str(leases)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(leases)], check=True)
        wait_for(lambda: write_error(port) == "EROFS")
        assert "root_unwritable" in finding_ids(sandbox)
        assert proc.poll() is None and get_health(port) is not None
    finally:
        subprocess.run(["umount", str(leases)], check=False)
    wait_for(lambda: write_error(port) is None)
    renewed_past(sandbox, lease["instance_id"], 0.5)
    assert proc.poll() is None
    assert "Traceback" not in proc.log_path.read_text()  # type: ignore[attr-defined]
