"""Inside a PID namespace (issue 23, ADR 0017): a container that shares our loopback but not our PIDs.

Real namespaces with ``unshare --pid --fork --mount-proc`` (root here and in CI; skipped, with the
reason, where the kernel or the user may not make one). Both directions:

- a CLI inside the namespace sees the host's daemons of other roots: it cannot see their owners, so
  they are ``never_touch`` ``other_pid_namespace``, the doctor says so in one line, ``--reset --force``
  skips them and exits 0, and no finding advises a command that cannot change them;
- the host sees a daemon started inside the namespace: it reports a PID that names another process
  here, so ``sync start`` reuses it giving the PID seen from here, and another root's doctor leaves
  it alone.

The namespace's first process is a Popen child of the sandbox; closing its stdin ends it, and with it
every process of the namespace (the kernel kills them when the namespace's init exits).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Sandbox, listening_pids

pytestmark = pytest.mark.live

NS = ["unshare", "--pid", "--fork", "--mount-proc"]
NOTE = "served from another PID namespace, e.g. a container"

#: Runs as the namespace's init: start a daemon of the shared root, print the result on one line,
#: then hold the namespace open until stdin closes.
INIT = """
import json, subprocess, sys
proc = subprocess.run([sys.executable, "-m", "synclease", "sync", "start", "--json"],
                      capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
print(json.dumps({"rc": proc.returncode, "out": proc.stdout, "err": proc.stderr}), flush=True)
sys.stdin.read()
"""

#: The in-process API on the host: the same answer as ``sync start --json``.
API = """
import json, synclease
result = synclease.ensure(by="namespace test")
print(json.dumps([result.pid, result.reported_pid, result.reused, result.pid_note]))
"""


def _namespaces_or_skip() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed (util-linux)")
    probe = subprocess.run([*NS, "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"a PID namespace cannot be made here ({probe.stderr.strip() or probe.returncode})")


def _sharing(factory: Callable[..., Sandbox], shared: Sandbox, name: str) -> Sandbox:
    """Another root whose daemons serve, and whose doctor scans, in ``shared``'s ports."""
    box = factory(name, 1)
    box.env.update(
        SYNCLEASE_PORT_RANGE=shared.env["SYNCLEASE_PORT_RANGE"],
        SYNCLEASE_PORT_HINT=shared.env["SYNCLEASE_PORT_HINT"],
    )
    return box


def _inside(box: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NS, sys.executable, "-m", "synclease", *args],
        env=box.env,
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )


def _contained(doc: dict[str, Any], ports: set[int]) -> list[dict[str, Any]]:
    return [i for i in doc["ignored"] if i["port"] in ports]


def test_a_cli_in_a_container_leaves_the_hosts_daemons_alone(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    _namespaces_or_skip()
    scanner = sandbox_factory("scanner")
    hosts = [_sharing(sandbox_factory, scanner, name) for name in ("a", "b")]
    ports = {box.cli_json("sync", "start")["port"] for box in hosts}
    assert len(ports) == 2 and ports <= set(scanner.ports)

    looked = _inside(scanner, "auth", "doctor", "--json")
    doc = json.loads(looked.stdout)
    assert [(i["skip_reason"], i["note"]) for i in _contained(doc, ports)] == [
        ("other_pid_namespace", NOTE)
    ] * 2, doc["ignored"]
    assert not [o for o in doc["orphans"] if o["port"] in ports]
    assert all("--force" not in f["remediation"]["command"] for f in doc["findings"]), doc["findings"]

    text = _inside(scanner, "auth", "doctor")
    assert text.stdout.count(NOTE) == 2, text.stdout

    reset = _inside(scanner, "auth", "doctor", "--reset", "--force", "--json")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    result = json.loads(reset.stdout)["reset_result"]
    assert result["failed"] == [] and result["swept"] == []
    skipped = {s["port"]: s["skip_reason"] for s in result["skipped"]}
    assert {p: skipped.get(p) for p in ports} == dict.fromkeys(ports, "other_pid_namespace")

    for box in hosts:  # untouched: still serving their roots
        assert box.cli_json("sync", "status")["healthy"] is True

    # The container's CLI on a host daemon's own root reuses it, and names no PID that is not its.
    host_pid = hosts[0].cli_json("sync", "start")["pid"]
    reused = json.loads(_inside(hosts[0], "sync", "start", "--json").stdout)
    assert reused["reused"] is True and (reused["pid"], reused["reported_pid"]) == (None, host_pid)
    assert "another PID namespace" in reused["pid_note"] and "not visible here" in reused["pid_note"]


def test_the_host_reuses_a_container_daemon_giving_its_pid_as_seen_here(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    _namespaces_or_skip()
    shared = sandbox_factory("shared")
    init = shared.popen(
        [*NS, sys.executable, "-c", INIT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert init.stdout is not None
        first = json.loads(init.stdout.readline())
        assert first["rc"] == 0, first
        started = json.loads(first["out"])
        port, pid_inside = started["port"], started["pid"]
        pid_here = listening_pids(shared.ports)[port]
        assert pid_here is not None and pid_here != pid_inside

        reused = shared.cli_json("sync", "start")
        assert reused["reused"] is True and reused["port"] == port
        assert (reused["pid"], reused["reported_pid"]) == (pid_here, pid_inside)
        assert "another PID namespace" in reused["pid_note"]

        api = subprocess.run(
            [sys.executable, "-c", API],
            env=shared.env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert json.loads(api.stdout)[:3] == [pid_here, pid_inside, True], api.stderr

        other = _sharing(sandbox_factory, shared, "other")
        doc = other.cli_json("auth", "doctor", ok=(0, 1))
        assert [(i["pid"], i["skip_reason"]) for i in _contained(doc, {port})] == [
            (pid_here, "other_pid_namespace")
        ]
        reset = other.cli("auth", "doctor", "--reset", "--force", "--json")
        assert reset.returncode == 0, reset.stdout + reset.stderr
        result = json.loads(reset.stdout)["reset_result"]
        assert result["failed"] == [] and port not in {s["port"] for s in result["swept"]}
        assert listening_pids(shared.ports)[port] == pid_here  # still serving
    finally:
        assert init.stdin is not None
        init.stdin.close()  # the namespace's init exits; the kernel ends the daemon inside with it
        init.wait(timeout=30)
