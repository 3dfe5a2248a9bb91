"""CI's sentinel: a healthy daemon of another root that the test suite must leave serving (issue 20).

``start ROOT`` starts a sync daemon in its own root ``ROOT`` on a port inside the sync range and prints
``PID INSTANCE PORT``; ``check ROOT PID INSTANCE PORT`` fails (exit 1, one line saying why) unless the
same PID and instance still answer ``/api/health`` on that port and its log has no retirement;
``stop ROOT`` retires it. Only the daemon started here is ever asked to stop (by its own root).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

#: The top of the general test ports: in range, and left to the suite's other tests only when free
#: (``CI_SENTINEL_PORT`` overrides it, e.g. to try the script inside a port sub-range of one's own).
PORT = int(os.environ.get("CI_SENTINEL_PORT", "9448"))


def _env(root: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLEASE_")}
    env.update(
        SYNCLEASE_HOME=root,
        SYNCLEASE_PORT_RANGE=f"{PORT}-{PORT}",
        SYNCLEASE_PORT_HINT=str(PORT),
        SYNCLEASE_IDLE_RETIREMENT_SECONDS=str(7 * 24 * 3600),
    )
    return env


def _cli(root: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "synclease", *args]
    return subprocess.run(argv, env=_env(root), capture_output=True, text=True, timeout=120, check=False)


def start(root: str) -> int:
    proc = _cli(root, "sync", "start", "--json")
    if proc.returncode != 0:
        print(f"sentinel: could not start a daemon in {root}: {proc.stderr.strip()}", file=sys.stderr)
        return 1
    doc = json.loads(proc.stdout)
    print(doc["pid"], doc["instance_id"], doc["port"])
    return 0


def check(root: str, pid: int, instance: str, port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as reply:
            health = json.loads(reply.read())
    except (OSError, ValueError) as exc:
        print(f"sentinel: pid {pid} no longer answers on port {port}: {exc}", file=sys.stderr)
        return 1
    if (health.get("pid"), health.get("instance_id")) != (pid, instance):
        print(
            f"sentinel: port {port} now serves {health.get('pid')}/{health.get('instance_id')}",
            file=sys.stderr,
        )
        return 1
    log = Path(root) / "logs" / f"daemon-{instance}.log"
    retired = [line for line in log.read_text(errors="replace").splitlines() if "retiring" in line]
    if retired:
        print(f"sentinel: its log records a retirement: {retired[0]}", file=sys.stderr)
        return 1
    print(f"sentinel: pid {pid} instance {instance} still serves port {port}, no retirement in its log")
    return 0


def stop(root: str) -> int:
    return _cli(root, "sync", "stop").returncode


def main(argv: list[str]) -> int:
    command, root, *rest = argv
    if command == "start":
        return start(root)
    if command == "check":
        return check(root, int(rest[0]), rest[1], int(rest[2]))
    return stop(root)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
