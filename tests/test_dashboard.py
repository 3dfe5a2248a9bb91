"""The dashboard family: record codec, cleanup judgement (pure), and the live command.

Live tests start real dashboards through the CLI on port hints in 9250-9330 (never the range edges
9237/9336: those belong to the boundary matrix). Every process is killed at teardown only on proof that
it is ours: its environment names this test's sandbox root.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import psutil
import pytest

from synclease.adapters import dashboard_store as store
from synclease.adapters import http_client as httpc
from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.fsio import check_private_dir
from synclease.adapters.http_server import host_allowed
from synclease.cli import dashboard_cmd
from synclease.core import dashboard_record as rec
from synclease.core.constants import DASHBOARD_PORT_RANGE, SYNC_PORT_RANGE
from synclease.core.dashboards import DashboardVerdict, judge
from synclease.core.errors import BadInputError, DaemonStartError, RootError
from synclease.core.escalate import CleanupPath, Outcome
from synclease.core.fleet import Listener, Observation, ScanResult
from synclease.core.health import HealthReport
from synclease.daemons.dashboard.fleet_view import FleetView, fleet_document
from synclease.daemons.dashboard.page import PAGE
from synclease.services import dashboard
from synclease.services.dashboard import cleanup
from tests.clocks import FakeClock
from tests.conftest import Sandbox, get_health, listening_pids, pid_alive, port_free, wait_for
from tests.fakes import ScriptedOps

REPO = Path(__file__).resolve().parent.parent
DOCTOR_SCHEMA_PATH = REPO / "protocol" / "doctor-v2.schema.json"
HINT_PORTS = range(9250, 9331)
_hints = itertools.cycle(range(HINT_PORTS.start, HINT_PORTS.stop, 3))


def free_hint() -> int:
    """A free port in 9250-9330 to start a dashboard's search at."""
    for _ in range(len(HINT_PORTS)):
        port = next(_hints)
        if port_free(port):
            return port
    pytest.skip("no free dashboard test port in 9250-9330")


# --- fixtures -----------------------------------------------------------------------------------


def _ours(pid: int, root: Path) -> bool:
    try:
        return psutil.Process(pid).environ().get("SYNCLEASE_HOME") == str(root)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


class Dashboards:
    """Projects under test and a reaper for the dashboards that serve them."""

    def __init__(self, box: Sandbox, base: Path) -> None:
        self.box = box
        self.base = base
        self.projects: list[Path] = []

    def project(self, name: str = "proj") -> Path:
        path = self.base / f"{name}-{len(self.projects)}"
        path.mkdir()
        self.projects.append(path.resolve())
        return path.resolve()

    def start(self, project: Path, *extra: str, ok: tuple[int, ...] = (0,)) -> dict[str, Any]:
        hint = str(free_hint())
        doc: dict[str, Any] = self.box.cli_json(
            "dashboard", "--project", str(project), "--port-hint", hint, *extra, ok=ok
        )
        return doc

    def reap(self) -> None:
        pids: set[int] = set()
        for project in self.projects:
            record = store.read(project).record
            if record is not None:
                pids.add(record.pid)
        pids.update(pid for pid in listening_pids(DASHBOARD_PORT_RANGE).values() if pid is not None)
        mine = [pid for pid in pids if _ours(pid, self.box.root)]
        for pid in mine:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for pid in mine:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
                psutil.Process(pid).wait(timeout=5)


@pytest.fixture
def dash(sandbox: Sandbox, tmp_path: Path) -> Iterator[Dashboards]:
    helper = Dashboards(sandbox, tmp_path / "projects")
    helper.base.mkdir()
    try:
        yield helper
    finally:
        helper.reap()


def fetch(
    port: int, path: str, host: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            conn.putheader("Host", host)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def token_of(started: dict[str, Any]) -> str:
    """The viewer token in the URL ``synclease dashboard --json`` printed."""
    url: str = started["url"]
    return url.split("?token=", 1)[1]


def fleet(started: dict[str, Any]) -> dict[str, Any]:
    status, _headers, body = fetch(started["port"], f"/api/fleet?token={token_of(started)}")
    assert status == 200, body
    doc: dict[str, Any] = json.loads(body)
    return doc


# --- the record codec (pure + defensive reads) -------------------------------------------------


def make_record(project: Path, port: int = 9260, pid: int = 4242) -> rec.DashboardRecord:
    return rec.DashboardRecord(
        project=str(project),
        port=port,
        pid=pid,
        process_start_time=1_700_000_000.25,
        started_at=datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        package_version="0.1.0",
        token="t" * 43,
    )


def test_record_round_trip_and_private_file(tmp_path: Path) -> None:
    store.prepare_kittify(tmp_path)
    record = make_record(tmp_path)
    store.write(tmp_path, record)
    path = rec.record_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(rec.kittify_dir(tmp_path).stat().st_mode) == 0o700
    doc = json.loads(path.read_text())
    assert doc["url"] == "http://127.0.0.1:9260/" and doc["daemon_family"] == "dashboard"
    assert doc["schema"] == rec.DASHBOARD_SCHEMA and doc["schema_version"] == 1
    assert {"url", "port", "pid", "process_start_time", "token", "started_at", "project"} <= doc.keys()
    assert store.read(tmp_path).record == record
    assert "t" * 43 not in repr(record)


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d.update(schema_version=2), "unknown_version"),
        (lambda d: d.update(schema="other"), "unknown_schema"),
        (lambda d: d.update(port=9400, url="http://127.0.0.1:9400/"), "bad_field"),
        (lambda d: d.update(url="http://evil.example:9260/"), "bad_field"),
        (lambda d: d.update(pid="4242"), "bad_field"),
        (lambda d: d.update(token=""), "bad_field"),
        (lambda d: d.update(daemon_family="sync"), "bad_field"),
        (lambda d: d.update(process_start_time=float("inf")), "bad_number"),
        (lambda d: d.update(project="/somewhere/else"), "project_mismatch"),
    ],
)
def test_hostile_records_are_problems(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], problem: str
) -> None:
    store.prepare_kittify(tmp_path)
    doc = json.loads(rec.encode(make_record(tmp_path)))
    mutate(doc)
    rec.record_path(tmp_path).write_text(json.dumps(doc))
    rec.record_path(tmp_path).chmod(0o600)
    entry = store.read(tmp_path)
    assert entry.record is None and entry.problem == problem


def test_unsafe_record_files_are_problems(tmp_path: Path) -> None:
    store.prepare_kittify(tmp_path)
    path = rec.record_path(tmp_path)
    assert store.read(tmp_path).problem == "missing"
    path.write_bytes(b"{not json")
    path.chmod(0o600)
    assert store.read(tmp_path).problem == "not_json"
    store.write(tmp_path, make_record(tmp_path))
    path.chmod(0o644)
    assert store.read(tmp_path).problem == "insecure_mode"
    path.unlink()
    target = tmp_path / "elsewhere"
    store.write(tmp_path, make_record(tmp_path))
    os.replace(path, target)
    path.symlink_to(target)
    assert store.read(tmp_path).problem == "symlink"


def test_remove_if_own_only_removes_its_own_record(tmp_path: Path) -> None:
    store.prepare_kittify(tmp_path)
    mine, theirs = make_record(tmp_path, pid=10), make_record(tmp_path, pid=11)
    store.write(tmp_path, theirs)
    assert store.remove_if_own(tmp_path, mine) is False
    assert store.read(tmp_path).record == theirs
    assert store.remove_if_own(tmp_path, theirs) is True
    assert store.read(tmp_path).problem == "missing"


def test_kittify_refuses_symlink_and_world_writable(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    project = tmp_path / "p"
    project.mkdir()
    (project / ".kittify").symlink_to(real)
    with pytest.raises(BadInputError):
        store.prepare_kittify(project)
    other = tmp_path / "q"
    (other / ".kittify").mkdir(parents=True)
    (other / ".kittify").chmod(0o777)
    with pytest.raises(BadInputError):
        store.prepare_kittify(other)
    existing = tmp_path / "r"
    (existing / ".kittify").mkdir(parents=True)
    (existing / ".kittify").chmod(0o755)  # another tool's directory: readable is fine, kept as is
    store.prepare_kittify(existing)
    assert stat.S_IMODE((existing / ".kittify").stat().st_mode) == 0o755


def test_project_and_port_hint_validation(tmp_path: Path) -> None:
    with pytest.raises(BadInputError):
        store.resolve_project(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInputError):
        store.resolve_project(tmp_path / "file")
    for bad in (9236, 9337, 9400):
        with pytest.raises(BadInputError):
            dashboard_cmd.check_port_hint(bad, tmp_path)
    hint = dashboard_cmd.check_port_hint(None, tmp_path)
    assert hint in DASHBOARD_PORT_RANGE and hint == rec.default_port_hint(tmp_path)


# --- the cleanup judgement (pure) ---------------------------------------------------------------

PROJECT = "/work/project-a"
START = 1_700_000_000.5


def dash_obs(
    port: int = 9260, pid: int | None = 500, says: dict[str, Any] | None = None, **health: Any
) -> Observation:
    """A dashboard-looking listener on ``port`` held by ``pid``; ``says`` overrides its self-reported
    pid/port, ``health`` any other self-reported field."""
    fields: dict[str, Any] = {
        "family": "dashboard",
        "project": PROJECT,
        "pid": pid,
        "port": port,
        "process_start_time": START,
    }
    fields.update(says or {})
    fields.update(health)
    return Observation(Listener(port, pid, START if pid is not None else None), HealthReport(**fields))


RECORDED = rec.DashboardRecord(
    project=PROJECT,
    port=9270,
    pid=700,
    process_start_time=START,
    started_at=datetime(2026, 3, 1, tzinfo=UTC),
    package_version="0.1.0",
    token="x" * 40,
)


@pytest.mark.parametrize(
    ("obs", "verdict"),
    [
        (dash_obs(), DashboardVerdict.TARGET),
        (dash_obs(port=9400), DashboardVerdict.OUT_OF_RANGE),
        (dash_obs(port=9236), DashboardVerdict.OUT_OF_RANGE),
        (Observation(Listener(9260, 500, START)), DashboardVerdict.NO_SELF_REPORT),
        (dash_obs(family="sync", sync_like=True), DashboardVerdict.OTHER_FAMILY),
        (dash_obs(family=None), DashboardVerdict.OTHER_FAMILY),
        (dash_obs(project="/work/project-b"), DashboardVerdict.OTHER_PROJECT),
        (dash_obs(project=None), DashboardVerdict.OTHER_PROJECT),
        (dash_obs(port=9270, pid=501), DashboardVerdict.RECORDED_DASHBOARD),
        (dash_obs(pid=700), DashboardVerdict.RECORDED_DASHBOARD),
        (dash_obs(pid=None), DashboardVerdict.MISSING_PID),
        (dash_obs(says={"pid": 999}), DashboardVerdict.IDENTITY_MISMATCH),
        (dash_obs(says={"port": 9261}), DashboardVerdict.IDENTITY_MISMATCH),
        (dash_obs(process_start_time=START + 5), DashboardVerdict.IDENTITY_MISMATCH),
        (dash_obs(process_start_time=None), DashboardVerdict.IDENTITY_MISMATCH),
        (dash_obs(pid=os.getpid()), DashboardVerdict.SELF),
    ],
)
def test_judge(obs: Observation, verdict: DashboardVerdict) -> None:
    assert judge(obs, PROJECT, RECORDED, os.getpid()) is verdict


def test_cleanup_escalates_only_proven_targets() -> None:
    observations = (
        dash_obs(port=9260, pid=500),  # stale, same project: the only target
        dash_obs(port=9261, pid=501, project="/work/project-b"),
        dash_obs(port=9270, pid=700),  # recorded
        dash_obs(port=9262, pid=502, family="sync", sync_like=True),
        Observation(Listener(9263, 503, START), None, "not_json"),
        dash_obs(port=9264, pid=None),
    )
    ops = ScriptedOps(gone_when_signalled=True)
    result = cleanup(
        Path(PROJECT),
        RECORDED,
        ops=ops,
        scan=lambda: ScanResult(observations=observations, ports_scanned=100, duration_ms=1.0),
    )
    assert ops.signalled == [(500, CleanupPath.TERMINATE)]
    assert "retire" not in ops.log  # the cleanup has no token: no polite step
    assert [o.target.pid for o in result.swept] == [500]
    assert result.swept[0].path is CleanupPath.TERMINATE
    assert [(j.port, j.verdict) for j in result.skipped] == [(9264, DashboardVerdict.MISSING_PID)]
    assert set(result.ignored_ports) == {9261, 9262, 9263}
    assert result.to_json()["swept"] == [{"pid": 500, "port": 9260, "cleanup_path": "terminate"}]


def test_cleanup_failure_is_reported() -> None:
    result = cleanup(
        Path(PROJECT),
        None,
        ops=ScriptedOps(gone_when_signalled=True, never_gone=True),
        scan=lambda: ScanResult(observations=(dash_obs(),), ports_scanned=100, duration_ms=1.0),
    )
    assert result.swept == () and [o.failure for o in result.failed] == ["survived_kill"]
    assert isinstance(result.failed[0], Outcome)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        (None, True),
        ("127.0.0.1:9260", True),
        ("localhost:9260", True),
        ("LOCALHOST", True),
        ("[::1]:9260", True),
        ("evil.example:9260", False),
        ("127.0.0.1.evil.example", False),
        ("[::2]:9260", False),
    ],
)
def test_host_header_guard(host: str | None, allowed: bool) -> None:
    assert host_allowed(host) is allowed


# --- the fleet document without a server -------------------------------------------------------


def test_fleet_document_never_creates_the_root(tmp_path: Path) -> None:
    root = tmp_path / "no-root-yet"
    env = {"SYNCLEASE_HOME": str(root), "SYNCLEASE_PORT_RANGE": "9446-9448"}
    doc = fleet_document(env, FakeClock())
    assert doc["schema_version"] == 2 and doc["daemon"] is None and doc["orphans"] == []
    assert doc["daemon_root"] == str(root)
    assert not root.exists()
    if DOCTOR_SCHEMA_PATH.exists():
        jsonschema.validate(doc, json.loads(DOCTOR_SCHEMA_PATH.read_text()))


def test_fleet_view_caches_briefly_and_reports_errors(tmp_path: Path) -> None:
    clock = FakeClock()
    unsafe = tmp_path / "unsafe"
    unsafe.mkdir()
    unsafe.chmod(0o777)
    view = FleetView({"SYNCLEASE_HOME": str(unsafe), "SYNCLEASE_PORT_RANGE": "9446-9448"}, clock)
    status, doc = view.document()
    assert status == 503 and "writable" in doc["error"]
    unsafe.chmod(0o700)
    assert view.document()[0] == 503  # still the cached answer
    clock.advance(5)
    assert view.document()[0] == 200
    unsafe.chmod(0o777)
    with pytest.raises(RootError):
        check_private_dir(unsafe)
    assert check_private_dir(tmp_path / "absent") is False


def test_wait_healthy_fails_fast_with_this_spawns_log_tail(tmp_path: Path) -> None:
    store.prepare_kittify(tmp_path)
    log = rec.log_path(tmp_path)
    log.write_text("old line from an earlier run\n")
    offset = log.stat().st_size
    with open(log, "ab") as handle:
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stderr.write('boom: cannot start\\n'); sys.exit(3)"],
            stdout=handle,
            stderr=handle,
        )
    with pytest.raises(DaemonStartError) as caught:
        dashboard.wait_healthy(child, tmp_path, offset, SYSTEM_CLOCK)
    assert "code 3" in caught.value.message
    assert "boom: cannot start" in caught.value.log_tail and "earlier run" not in caught.value.log_tail


def test_detached_entry_point_imports_no_typer_or_rich() -> None:
    code = "import sys, synclease.daemons.dashboard.__main__; print(sorted({'typer', 'rich'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_page_is_self_contained_and_read_only() -> None:
    assert not re.search(r"https?://", PAGE)
    assert not re.search(r"\b(src|href)\s*=", PAGE)
    assert "<link" not in PAGE and "@import" not in PAGE
    assert "/api/fleet" in PAGE and "function renderFleet" in PAGE and "setTimeout(refresh" in PAGE
    assert "<button" not in PAGE and "<form" not in PAGE
    assert "/api/shutdown" not in PAGE and "POST" not in PAGE
    assert "synclease auth doctor --reset" in PAGE and "synclease auth doctor</code>" in PAGE
    assert "innerHTML" not in PAGE  # values come from listeners' self-reports: text only


# --- live: the command -------------------------------------------------------------------------


@pytest.mark.live
def test_start_json_then_reuse(sandbox: Sandbox, dash: Dashboards) -> None:
    project = dash.project()
    first = dash.start(project)
    assert set(first) >= {"url", "port", "pid", "project", "reused"}
    assert first["reused"] is False and first["project"] == str(project)
    assert first["port"] in DASHBOARD_PORT_RANGE
    assert first["url"] == f"http://127.0.0.1:{first['port']}/?token={store.read(project).record.token}"  # type: ignore[union-attr]
    assert pid_alive(first["pid"]) and listening_pids(DASHBOARD_PORT_RANGE).get(first["port"]) == first["pid"]
    record = store.read(project).record
    assert record is not None and record.pid == first["pid"] and record.port == first["port"]
    assert stat.S_IMODE(rec.record_path(project).stat().st_mode) == 0o600
    assert stat.S_IMODE(rec.kittify_dir(project).stat().st_mode) == 0o700

    second = dash.start(project)
    assert second["reused"] is True
    assert (second["pid"], second["port"], second["url"]) == (first["pid"], first["port"], first["url"])


@pytest.mark.live
def test_health_and_page(sandbox: Sandbox, dash: Dashboards) -> None:
    project = dash.project()
    started = dash.start(project)
    port = started["port"]
    health = get_health(port)
    assert health is not None
    assert health["daemon_family"] == "dashboard" and health["project"] == str(project)
    assert health["pid"] == started["pid"] and health["port"] == port
    assert {"process_start_time", "started_at", "package_version"} <= health.keys()
    token = store.read(project).record.token  # type: ignore[union-attr]
    assert "token" not in json.dumps(health) and token not in json.dumps(health)

    # The page and the fleet need the token: in the printed URL (then a cookie), or as a bearer.
    assert fetch(port, "/")[0] == 403 and fetch(port, "/api/fleet")[0] == 403
    assert fetch(port, "/?token=wrong")[0] == 403
    assert fetch(port, "/api/fleet", headers={"Cookie": f"synclease_dashboard_{port}=wrong"})[0] == 403
    status, headers, _ = fetch(port, f"/?token={token}")
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert cookie.startswith(f"synclease_dashboard_{port}={token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    with_cookie = {"Cookie": cookie.split(";", 1)[0]}
    assert fetch(port, "/api/fleet", headers=with_cookie)[0] == 200
    assert fetch(port, "/api/fleet", headers={"Authorization": f"Bearer {token}"})[0] == 200
    status, headers, body = fetch(port, "/", headers=with_cookie)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in headers["content-security-policy"]
    page = body.decode()
    assert not re.search(r"https?://", page) and "renderFleet" in page and "/api/fleet" in page
    assert token not in page

    assert fetch(port, "/api/health", host="attacker.example")[0] == 403
    assert fetch(port, "/", host="attacker.example")[0] == 403
    assert httpc.post(port, "/api/shutdown", "wrong-token", timeout=2).status == 403
    assert pid_alive(started["pid"])


def leased(box: Sandbox, proc: subprocess.Popen[bytes]) -> bool:
    """True once ``proc`` holds a lease; fails at once, with its log, if it exited instead."""
    if proc.poll() is not None:
        log = Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]
        raise AssertionError(f"sync daemon exited with {proc.returncode}: {log[-2000:]}")
    return any(lease["pid"] == proc.pid for lease in box.leases())


@pytest.mark.live
def test_fleet_is_the_doctor_document_with_singleton_and_orphan(sandbox: Sandbox, dash: Dashboards) -> None:
    # A stalls its heartbeat and ignores retire requests (a wedged old daemon); B supersedes it.
    a = sandbox.run_daemon(
        env={"SYNCLEASE_FAILPOINTS": "stall_heartbeat,ignore_retire", "SYNCLEASE_LEASE_TTL_SECONDS": "1"}
    )
    wait_for(lambda: leased(sandbox, a))
    b = sandbox.run_daemon("--replace")
    wait_for(lambda: leased(sandbox, b))
    started = dash.start(dash.project())

    def settled() -> dict[str, Any] | None:
        doc = fleet(started)
        daemon = doc["daemon"]
        orphans = {o["pid"]: o for o in doc["orphans"]}
        ok = daemon is not None and daemon["pid"] == b.pid and a.pid in orphans
        return doc if ok else None

    doc = wait_for(settled)
    orphan = next(o for o in doc["orphans"] if o["pid"] == a.pid)
    assert orphan["cleanup_class"] in ("safe_auto", "operator_required")
    assert {lease["pid"] for lease in doc["leases"]} >= {a.pid, b.pid}
    assert doc["daemon_root"] == str(sandbox.root)
    if DOCTOR_SCHEMA_PATH.exists():
        jsonschema.validate(doc, json.loads(DOCTOR_SCHEMA_PATH.read_text()))
    doctor = sandbox.cli_json("auth", "doctor")
    assert set(doctor) == set(doc)
    assert doctor["daemon"]["instance_id"] == doc["daemon"]["instance_id"]
    # Read-only: the dashboard never cleaned the orphan.
    assert pid_alive(a.pid) and pid_alive(b.pid)


@pytest.mark.live
def test_stop_is_polite_then_not_running(sandbox: Sandbox, dash: Dashboards) -> None:
    project = dash.project()
    started = dash.start(project)
    stopped = dash.box.cli_json("dashboard", "--project", str(project), "--stop")
    assert stopped["stopped"] is True and stopped["cleanup_path"] == "http_retire"
    assert stopped["pid"] == started["pid"] and stopped["project"] == str(project)
    wait_for(lambda: not pid_alive(started["pid"]))
    assert store.read(project).problem == "missing"
    again = dash.box.cli_json("dashboard", "--project", str(project), "--stop")
    assert again["stopped"] is False and again["reason"] == "not_running"


@pytest.mark.live
def test_start_cleans_a_stale_dashboard_of_the_same_project_only(sandbox: Sandbox, dash: Dashboards) -> None:
    project, other = dash.project("a"), dash.project("b")
    stale = dash.start(project)
    # A second dashboard of the same project overwrites the record: the first is now stale metadata.
    fresh = sandbox.popen(
        [
            sys.executable,
            "-m",
            "synclease.daemons.dashboard",
            "--project",
            str(project),
            "--port-hint",
            str(free_hint()),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(
        lambda: (r := store.read(project).record) is not None and r.pid == fresh.pid and get_health(r.port)
    )
    neighbour = dash.start(other)

    again = dash.start(project)
    assert again["reused"] is True and again["pid"] == fresh.pid
    swept = again["cleanup"]["swept"]
    assert [(s["pid"], s["port"]) for s in swept] == [(stale["pid"], stale["port"])]
    assert swept[0]["cleanup_path"] == "terminate"
    wait_for(lambda: not pid_alive(stale["pid"]))
    assert fresh.poll() is None and pid_alive(neighbour["pid"])
    assert get_health(neighbour["port"]) is not None
    assert store.read(other).record.pid == neighbour["pid"]  # type: ignore[union-attr]
    assert store.read(project).record.pid == fresh.pid  # type: ignore[union-attr]


@pytest.mark.live
def test_dashboard_is_local_only(sandbox: Sandbox, dash: Dashboards) -> None:
    assert not sandbox.root.exists()
    before = {
        port: pid for port, pid in listening_pids(SYNC_PORT_RANGE).items() if pid and _ours(pid, sandbox.root)
    }
    assert before == {}
    project = dash.project()
    started = dash.start(project)
    assert fleet(started)["daemon"] is None
    assert fetch(started["port"], f"/?token={token_of(started)}")[0] == 303
    dash.start(project)
    after = {
        port: pid for port, pid in listening_pids(SYNC_PORT_RANGE).items() if pid and _ours(pid, sandbox.root)
    }
    assert after == {} and sandbox.listeners() == {}
    assert not sandbox.root.exists()  # no daemon root was created, let alone a lease or a singleton
    dash.box.cli_json("dashboard", "--project", str(project), "--stop")
    assert not sandbox.root.exists()


@pytest.mark.live
@pytest.mark.parametrize(
    "args",
    [
        ("--project", "/definitely/not/a/dir"),
        ("--project", "__FILE__"),
        ("--port-hint", "9400"),
        ("--port-hint", "9337"),
    ],
)
def test_bad_input_is_exit_2_one_line(sandbox: Sandbox, dash: Dashboards, args: tuple[str, ...]) -> None:
    project = dash.project()
    afile = project / "file.txt"
    afile.write_text("x")
    argv = [a.replace("__FILE__", str(afile)) for a in args]
    if "--project" not in argv:
        argv = ["--project", str(project), *argv]
    proc = sandbox.cli("dashboard", *argv, "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synclease: error:")
    assert store.read(project).problem == "missing"
