"""Privilege: never signal a process whose effective uid is not ours. As root (CI), a legacy-shaped
listener run by another user in the sync range is left alone even by ``--reset --force``."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import neighbours
from tests.conftest import Sandbox, get_health, listening_pids, pid_alive, wait_for

pytestmark = pytest.mark.live

NOBODY = 65534
LEGACY_SHAPED = {"protocol_version": 1, "package_version": "3.2.3"}
#: The neighbour runs as another user, who cannot use root's interpreter under /root.
SYSTEM_PYTHON = "/usr/bin/python3"


def as_nobody() -> None:
    os.setgid(NOBODY)
    os.setuid(NOBODY)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the other user can use (pytest's own temp dirs are root's, 0700)."""
    path = Path(tempfile.mkdtemp(prefix="synclease-nobody-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(
    os.geteuid() != 0, reason="running a process as another user needs root (CI runs as root)"
)
@pytest.mark.skipif(
    not os.access(SYSTEM_PYTHON, os.X_OK), reason=f"{SYSTEM_PYTHON} runs the other user's neighbour"
)
def test_reset_force_never_signals_another_users_process(sandbox: Sandbox, shared_dir: Path) -> None:
    script = shared_dir / "neighbours.py"
    shutil.copy(neighbours.SCRIPT, script)
    logs = shared_dir / "logs"
    logs.mkdir()
    logs.chmod(0o777)
    signal_log = logs / "signals.log"
    port = sandbox.ports[-1]
    command = [SYSTEM_PYTHON, str(script), *neighbours.argv("json", port, signal_log, LEGACY_SHAPED)[2:]]
    other = sandbox.popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, preexec_fn=as_nobody)
    wait_for(lambda: listening_pids(range(port, port + 1)).get(port) == other.pid and get_health(port))
    before = sandbox.cli_json("auth", "doctor")
    # The OS shows it under another uid: never_touch other_uid (issue 20), not a candidate at all.
    assert [o for o in before["orphans"] if o["pid"] == other.pid] == []
    [row] = [i for i in before["ignored"] if i["pid"] == other.pid]
    assert row["skip_reason"] == "other_uid"

    result = sandbox.cli_json("auth", "doctor", "--reset", "--force")["reset_result"]
    assert result["swept"] == [] and result["failed"] == []
    assert [(s["pid"], s["skip_reason"]) for s in result["skipped"]] == [(other.pid, "other_uid")]
    assert pid_alive(other.pid) and other.poll() is None
    assert not signal_log.exists() or signal_log.read_text() == ""
