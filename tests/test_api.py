"""The public Python API (docs/api.md): what importing it loads, and each call against live daemons,
in-process and through the example host CLI (examples/hostcli)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import synclease
from tests.conftest import Sandbox, login, wait_for
from tests.receiver import Receiver

HOSTCLI = Path(__file__).resolve().parent.parent / "examples" / "hostcli" / "hostcli.py"
FORBIDDEN = ("typer", "click", "rich", "psutil")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


# --- what an import loads (deterministic: module sets, never durations) --------------------------


def test_importing_ensure_loads_no_cli_framework_and_no_process_table() -> None:
    loaded = _modules_after("from synclease import ensure")
    assert not {m for m in loaded if m.split(".")[0] in FORBIDDEN}
    # nor the machinery only a spawn, a sweep or a ledger read needs
    assert not loaded & {"filelock", "subprocess", "sqlite3", "hashlib", "platformdirs", "http.client"}
    assert not loaded & {"dataclasses", "inspect"}  # records (ADR 0012)
    assert not loaded & {"importlib", "fcntl", "secrets", "hmac", "uuid"}  # issue #19: used off its path
    assert not loaded & {"synclease.services.spawning", "synclease.services.sweep", "synclease.core.ledger"}


def test_importing_the_package_loads_only_its_version() -> None:
    loaded = {m for m in _modules_after("import synclease") if m.startswith("synclease")}
    assert loaded == {"synclease", "synclease._version"}


def test_every_public_name_resolves_and_is_typed() -> None:
    from synclease import _HOMES

    assert set(synclease.__all__) == {*_HOMES, "__version__"}
    for name in synclease.__all__:
        assert getattr(synclease, name) is not None
    assert (Path(synclease.__file__).parent / "py.typed").exists()
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        synclease.nope


# --- live, in-process ---------------------------------------------------------------------------


@pytest.fixture
def api_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """This process reads the sandbox's environment, as a host CLI reads its user's."""
    for name in [n for n in os.environ if n.startswith("SYNCLEASE_")]:
        monkeypatch.delenv(name)
    for name, value in sandbox.env.items():
        if name.startswith("SYNCLEASE_"):
            monkeypatch.setenv(name, value)
    return sandbox


def test_ensure_starts_one_daemon_then_reuses_it(api_env: Sandbox) -> None:
    first = synclease.ensure(by="hostcli build")
    api_env.extra_pids.add(first.pid)
    assert not first.reused and first.port in api_env.ports
    again = synclease.ensure()
    assert again.reused and (again.pid, again.instance_id) == (first.pid, first.instance_id)
    status = api_env.cli_json("sync", "status")
    assert status["singleton"]["pid"] == first.pid  # the CLI and the API share the daemon
    history = api_env.cli_json("sync", "history")
    spawned = [e for e in history["events"] if e["event"] == "spawned"]
    assert spawned[-1]["by"]["command"] == "hostcli build"


def test_home_overrides_the_environment(api_env: Sandbox, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    found = synclease.survey(home=other)
    assert found.ctx.daemon_root == str(other)
    assert not other.exists()  # the survey is read-only: it creates nothing


def test_enqueue_is_durable_without_a_session_and_uploads_with_one(api_env: Sandbox, rx: Receiver) -> None:
    local = synclease.enqueue("build.finished", {"target": "app"})
    assert (len(local.ids), local.queue_depth, local.daemon) == (1, 1, None)
    login(api_env, rx)
    pushed = synclease.enqueue_many([("build.finished", {"target": "lib"}), ("build.started", None)])
    assert pushed.daemon is not None
    api_env.extra_pids.add(pushed.daemon.pid)
    assert rx.wait_for(lambda: rx.accepted_ids >= {*local.ids, *pushed.ids})


def test_survey_and_reset_see_the_singleton_and_leave_it(api_env: Sandbox) -> None:
    daemon = synclease.ensure()
    api_env.extra_pids.add(daemon.pid)
    found = synclease.survey()
    assert found.singleton is not None and found.singleton.pid == daemon.pid
    assert found.orphans == []
    done = synclease.reset()
    assert (done.result.swept, done.result.failed) == ([], [])
    assert synclease.ensure().pid == daemon.pid


def test_bad_input_is_one_typed_error(api_env: Sandbox) -> None:
    with pytest.raises(synclease.BadInputError) as named:
        synclease.ensure(by="Build --force")
    assert "not a command name: pass one to four lowercase words" in named.value.one_line()
    with pytest.raises(synclease.BadInputError):
        synclease.enqueue("", {"x": 1})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNCLEASE_PORT_RANGE", "nonsense")
        with pytest.raises(synclease.SyncleaseError) as caught:
            synclease.ensure()
    assert "SYNCLEASE_PORT_RANGE" in caught.value.one_line()


# --- live, through the example host CLI ---------------------------------------------------------


def _hostcli(box: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HOSTCLI), *args], env=box.env, capture_output=True, text=True, timeout=60
    )


def test_the_example_host_cli_embeds_one_shared_daemon(sandbox: Sandbox, rx: Receiver) -> None:
    login(sandbox, rx)
    first = _hostcli(sandbox, "build", "app", "--json")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    sandbox.extra_pids.add(doc["daemon_pid"])
    assert not doc["reused"] and len(doc["event_ids"]) == 1
    second = json.loads(_hostcli(sandbox, "build", "lib", "--json").stdout)
    assert second["reused"] and second["daemon_pid"] == doc["daemon_pid"]
    assert rx.wait_for(lambda: rx.accepted_ids >= {*doc["event_ids"], *second["event_ids"]})
    shown = _hostcli(sandbox, "doctor")
    assert shown.returncode == 0 and f"singleton pid {doc['daemon_pid']}" in shown.stdout
    wait_for(lambda: sandbox.cli_json("sync", "status")["singleton"]["sync"]["queue_depth"] == 0)


def test_the_example_host_cli_reports_a_bad_setting_in_one_line(sandbox: Sandbox) -> None:
    bad = subprocess.run(
        [sys.executable, str(HOSTCLI), "build"],
        env={**sandbox.env, "SYNCLEASE_LEASE_TTL_SECONDS": "-1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("hostcli: ")
    assert "SYNCLEASE_LEASE_TTL_SECONDS" in bad.stderr and "Traceback" not in bad.stderr
    assert sandbox.listeners() == {}  # nothing was started
