"""Bad inputs and dependencies: a cloned project that ships its dashboard lock as a symlink, tokens kept
out of every ``repr``, and daemon logs that stay bounded."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from synclease.core.dashboard_record import DashboardRecord
from synclease.core.escalate import Target
from synclease.core.lease import LeaseRecord
from synclease.core.session import new_session
from tests.conftest import Sandbox

SECRET = "tok-SECRET-repr-9c1d"


def test_a_symlinked_dashboard_lock_is_one_line_and_exit_2(sandbox: Sandbox, tmp_path: Path) -> None:
    project = tmp_path / "cloned-repo"
    (project / ".kittify").mkdir(parents=True, mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("do not truncate me\n")
    (project / ".kittify" / ".dashboard.lock").symlink_to(victim)
    proc = sandbox.cli("dashboard", "--project", str(project), "--json")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "symlink" in lines[0] and "Traceback" not in proc.stderr
    assert victim.read_text() == "do not truncate me\n"  # the link was never followed


def test_tokens_never_appear_in_a_repr() -> None:
    when = datetime(2030, 1, 1, tzinfo=UTC)
    lease = LeaseRecord(
        "sync", "abcdefgh12345678", "scope", "/r", 1, 1.0, 9401, "1", 1, when, when, 10.0, "serving", SECRET
    )
    record = DashboardRecord("/p", 9260, 1, 1.0, when, "1", SECRET)
    session = new_session("https://sync.example.com", SECRET, None, None, when)
    target = Target(1, 9401, 1.0, "abcdefgh12345678", SECRET)
    for value in (lease, record, session, target):
        assert SECRET not in repr(value) and SECRET not in str(value)


LOGGER = """
import logging, os, sys
from pathlib import Path
from synclease.adapters.daemon_log import MAX_LOG_BYTES, configure_logging
path = Path(sys.argv[1])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
os.dup2(fd, 2)
configure_logging(path)
line = "x" * 1000
for _ in range(3 * MAX_LOG_BYTES // 1000):
    logging.getLogger("synclease.daemon").info(line)
"""


def test_a_daemon_log_stays_bounded_with_one_rotation(tmp_path: Path) -> None:
    from synclease.adapters.daemon_log import MAX_LOG_BYTES

    log = tmp_path / "daemon-x.log"
    subprocess.run([sys.executable, "-c", LOGGER, str(log)], check=True)
    rotated = tmp_path / "daemon-x.log.1"
    assert rotated.exists() and not (tmp_path / "daemon-x.log.2").exists()
    for path in (log, rotated):
        assert path.stat().st_size <= MAX_LOG_BYTES + 2048
        assert path.stat().st_mode & 0o077 == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daemon-x.log", "daemon-x.log.1"]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SYNCLEASE_HEARTBEAT_SECONDS": str(9 * 3600)}, "SYNCLEASE_HEARTBEAT_SECONDS"),
        (
            {"SYNCLEASE_HEARTBEAT_SECONDS": "5", "SYNCLEASE_LEASE_TTL_SECONDS": "7"},
            "SYNCLEASE_LEASE_TTL_SECONDS",
        ),
    ],
)
def test_bad_timings_stop_the_cli_with_one_line(sandbox: Sandbox, env: dict[str, str], named: str) -> None:
    proc = sandbox.cli("sync", "start", env=env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0]


def test_plain_http_to_a_remote_server_is_refused(sandbox: Sandbox) -> None:
    proc = sandbox.cli("auth", "login", "--server", "http://sync.example.com", input=b"tok-123\n")
    assert proc.returncode == 2 and "https://" in proc.stderr and "tok-123" not in proc.stderr
