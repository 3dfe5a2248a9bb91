"""Measure the performance targets (benchmarks/README.md) with live daemons; print and write JSON.

Run it on an otherwise idle machine with nothing listening on 9400-9449 (it uses the whole range):

    .venv/bin/python benchmarks/run.py [--out benchmarks/results.json] [--quick]

Command-line figures are whole processes timed from outside, each run paired with a run of the floor,
``python -c "import typer"`` from the same venv, so that a ratio compares like with like when the
machine's speed drifts. Every figure is reported as min, median and max. Every daemon it starts
lives in a temporary root and is killed by PID at the end.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

from synclease.adapters import http_client
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.probe import scan
from synclease.adapters.root import DaemonRoot

PY = sys.executable
SCRIPT = str(Path(PY).with_name("synclease"))  # the console script, as users run it
FLOOR = [PY, "-c", "import typer"]
FULL_RANGE = "9400-9449"
SYNC_PORTS = range(9400, 9450)
SRC = Path(__file__).resolve().parent.parent / "src"

#: target name -> (figure path in results, limit, unit of the limit)
TARGETS = {
    "sync start --json, healthy singleton": ("cli.sync_start_reuse.ratio", 1.2, "x floor"),
    "sync status --json": ("cli.sync_status.ratio", 1.3, "x floor"),
    "auth doctor --json, 20 live daemons": ("cli.doctor_json_20.ratio", 1.7, "x floor"),
    "from synclease import ensure (bare interpreter)": ("api.import_ms", 25.0, "ms"),
    "ensure() with a healthy singleton": ("api.call_ms", 5.0, "ms"),
    "auth doctor --reset, 45 safe_auto daemons": ("reset.safe_auto_45_ms", 1500.0, "ms"),
    "cold sync start, empty root": ("start.cold_ms", 350.0, "ms"),
    "idle daemon RSS": ("idle.rss_mb", 30.0, "MB"),
}


def stats(samples: list[float], digits: int = 1) -> dict[str, float]:
    return {
        "min": round(min(samples), digits),
        "median": round(statistics.median(samples), digits),
        "max": round(max(samples), digits),
        "runs": len(samples),
    }


def wall_ms(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode not in (0, 1):  # 1: doctor's findings, status's "not healthy"
        raise RuntimeError(f"{argv} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    return elapsed


def paired(argv: list[str], env: dict[str, str], runs: int) -> dict[str, Any]:
    """``argv`` and the floor in turn (A B A B ...): each figure, and the ratio taken pair by pair."""
    for _ in range(2):  # warm-up: page cache, bytecode
        wall_ms(argv, env)
        wall_ms(FLOOR, env)
    ours, floor = [], []
    for _ in range(runs):
        ours.append(wall_ms(argv, env))
        floor.append(wall_ms(FLOOR, env))
    return {
        "ms": stats(ours),
        "floor_ms": stats(floor),
        "ratio": stats([a / b for a, b in zip(ours, floor, strict=True)], 3),
    }


class Bench:
    def __init__(self, root: Path, port_range: str = FULL_RANGE, **env: str) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLEASE_")}
        lo = port_range.split("-", maxsplit=1)[0]
        self.env.update(SYNCLEASE_HOME=str(root), SYNCLEASE_PORT_RANGE=port_range, SYNCLEASE_PORT_HINT=lo)
        self.env.update(env)
        self.children: list[subprocess.Popen[bytes]] = []

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SCRIPT, *args], env={**self.env, **env}, capture_output=True, text=True, check=False
        )

    def daemon(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [PY, "-m", "synclease.daemons.sync", *(args or ("--replace",))],
            env={**self.env, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.children.append(proc)
        return proc

    def wait_healthy(self, pid: int, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        store = LeaseStore(DaemonRoot(self.root))
        while time.monotonic() < deadline:
            for entry in store.list():
                lease = entry.lease
                if lease and lease.pid == pid and http_client.get_json(lease.port, "/api/health", 0.5).ok:
                    return lease.port
            time.sleep(0.01)
        raise RuntimeError(f"daemon {pid} never became healthy")

    def stale_pile(self, n: int, failpoints: str = "stall_heartbeat") -> list[int]:
        """``n`` daemons of this root whose leases expire while they keep answering health: orphans
        the doctor classifies ``safe_auto``. ``--managed``: none of them asks another to retire."""
        pids = []
        for i in range(n):
            proc = self.daemon(
                "--managed",
                SYNCLEASE_FAILPOINTS=failpoints,
                SYNCLEASE_LEASE_TTL_SECONDS="1.5",
                SYNCLEASE_HEARTBEAT_SECONDS="0.5",
                SYNCLEASE_VERSION=f"3.2.{i}",
            )
            self.wait_healthy(proc.pid)
            pids.append(proc.pid)
        time.sleep(1.7)  # let the last lease expire (set-up of a benchmark, not a test)
        return pids

    def spawned_pids(self) -> set[int]:
        return {e.lease.pid for e in LeaseStore(DaemonRoot(self.root)).list() if e.lease}

    def cleanup(self) -> None:
        pids = self.spawned_pids() | {c.pid for c in self.children}
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                if psutil.Process(pid).environ().get("SYNCLEASE_HOME") == str(self.root):
                    os.kill(pid, signal.SIGKILL)
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
                psutil.Process(pid).wait(timeout=5)


@contextlib.contextmanager
def bench(port_range: str = FULL_RANGE, **env: str) -> Iterator[Bench]:
    with tempfile.TemporaryDirectory(prefix="synclease-bench-") as tmp:
        b = Bench(Path(tmp) / "root", port_range, **env)
        try:
            yield b
        finally:
            b.cleanup()


def timed_ms(fn: Callable[[], Any], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


# --- the figures ---------------------------------------------------------------------------------


def bench_cli(runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with bench() as b:
        assert b.cli("sync", "start", "--json").returncode == 0
        out["sync_start_reuse"] = paired([SCRIPT, "sync", "start", "--json"], b.env, runs)
        out["sync_status"] = paired([SCRIPT, "sync", "status", "--json"], b.env, runs)
    with bench() as b:
        b.stale_pile(20)
        doc = json.loads(b.cli("auth", "doctor", "--json").stdout)
        out["doctor_json_20"] = paired([SCRIPT, "auth", "doctor", "--json"], b.env, runs)
        out["doctor_json_20"]["orphans_seen"] = len(doc["orphans"])
        out["doctor_json_20"]["classes"] = sorted({o["cleanup_class"] for o in doc["orphans"]})
    return out


API_PROBE = textwrap.dedent(
    """
    import sys, time
    if sys.argv[1] == "typer":
        import typer
    started = time.perf_counter()
    from synclease import ensure
    imported = (time.perf_counter() - started) * 1000
    import json  # only after the measurement: json (and statistics, once imported here) would have
    # pre-loaded modules that the import above pays for itself in a bare interpreter
    calls = []
    for _ in range(int(sys.argv[2])):
        t = time.perf_counter()
        assert ensure().reused
        calls.append((time.perf_counter() - t) * 1000)
    print(json.dumps({"import_ms": imported, "calls_ms": calls}))
    """
)


def bench_api(runs: int) -> dict[str, Any]:
    with bench() as b:
        assert b.cli("sync", "start", "--json").returncode == 0
        probes = {
            host: [
                json.loads(subprocess.check_output([PY, "-c", API_PROBE, host, "20"], env=b.env))
                for _ in range(runs)
            ]
            for host in ("bare", "typer")
        }
    bare = probes["bare"]
    return {
        "import_ms": stats([p["import_ms"] for p in bare]),
        "import_in_typer_host_ms": stats([p["import_ms"] for p in probes["typer"]]),
        "first_call_ms": stats([p["calls_ms"][0] for p in bare], 2),
        "call_ms": stats([ms for p in bare for ms in p["calls_ms"][1:]], 2),
    }


def bench_scan_and_reset(runs: int, reset_runs: int) -> dict[str, Any]:
    """The scan at 0, 10, 20 and 45 live daemons (one pile, grown), then ``--reset`` of all 45."""
    scans: dict[str, Any] = {}
    resets: list[float] = []
    outcomes: list[dict[str, Any]] = []
    for attempt in range(reset_runs):
        with bench() as b:
            if attempt == 0:
                live = 0
                for target in (0, 10, 20, 45):
                    b.stale_pile(target - live)
                    live = target
                    scans[f"daemons_{target}"] = stats(timed_ms(lambda: scan(SYNC_PORTS), runs))
            else:
                b.stale_pile(45)
            started = time.perf_counter()
            proc = b.cli("auth", "doctor", "--reset", "--json")
            resets.append((time.perf_counter() - started) * 1000)
            result = json.loads(proc.stdout)["reset_result"]
            outcomes.append(
                {"exit": proc.returncode, "swept": len(result["swept"]), "failed": len(result["failed"])}
            )
    return {"scan_ms": scans, "safe_auto_45_ms": stats(resets), "outcomes": outcomes}


def bench_reset_with_stubborn(n: int, stubborn: int) -> dict[str, Any]:
    """``n`` orphans of which ``stubborn`` refuse the polite retire and ignore SIGTERM."""
    with bench() as b:
        b.stale_pile(n - stubborn)
        b.stale_pile(stubborn, failpoints="stall_heartbeat,ignore_retire,ignore_sigterm")
        started = time.perf_counter()
        proc = b.cli("auth", "doctor", "--reset", "--json")
        elapsed = (time.perf_counter() - started) * 1000
    result = json.loads(proc.stdout)["reset_result"]
    paths: dict[str, int] = {}
    for item in result["swept"]:
        paths[item["cleanup_path"]] = paths.get(item["cleanup_path"], 0) + 1
    return {"daemons": n, "stubborn": stubborn, "reset_ms": round(elapsed, 1), "paths": paths}


def bench_start(runs: int) -> dict[str, Any]:
    cold = []
    for _ in range(runs):
        with bench() as b:
            started = time.perf_counter()
            out = b.cli("sync", "start", "--json")
            cold.append((time.perf_counter() - started) * 1000)
            assert out.returncode == 0, out.stderr
    to_healthy = []
    for _ in range(runs):
        with bench() as b:
            started = time.perf_counter()
            b.wait_healthy(b.daemon().pid)
            to_healthy.append((time.perf_counter() - started) * 1000)
    return {"cold_ms": stats(cold), "spawn_to_healthy_ms": stats(to_healthy)}


def exited(pid: int, timeout: float = 10.0) -> float:
    """perf_counter time at which ``pid`` had exited (a zombie counts: its reaping is init's)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.005)
    return time.perf_counter()


def bench_supersede(runs: int) -> dict[str, Any]:
    """An old daemon that refuses the polite retire leaves by its own governor within a heartbeat."""
    latencies = []
    heartbeat = 2.0
    for _ in range(runs):
        with bench(SYNCLEASE_HEARTBEAT_SECONDS=str(heartbeat)) as b:
            old = json.loads(
                b.cli(
                    "sync", "start", "--json", SYNCLEASE_VERSION="3.2.3", SYNCLEASE_FAILPOINTS="ignore_retire"
                ).stdout
            )
            b.cli("sync", "start", "--json", SYNCLEASE_VERSION="3.2.4")
            recorded = time.perf_counter()
            latencies.append((exited(old["pid"]) - recorded) * 1000)
    return {"heartbeat_ms": heartbeat * 1000, "supersede_to_exit_ms": stats(latencies)}


def bench_idle(seconds: float) -> dict[str, Any]:
    with bench() as b:
        started = json.loads(b.cli("sync", "start", "--json").stdout)
        proc = psutil.Process(started["pid"])
        time.sleep(1.0)  # let start-up settle
        before = proc.cpu_times()
        time.sleep(seconds)
        after = proc.cpu_times()
        cpu = (after.user + after.system - before.user - before.system) / seconds * 100
        return {
            "rss_mb": round(proc.memory_info().rss / 2**20, 1),
            "cpu_percent": round(cpu, 2),
            "window_s": seconds,
        }


def verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, (where, limit, unit) in TARGETS.items():
        value: Any = results
        for key in where.split("."):
            value = value[key]
        median = value["median"] if isinstance(value, dict) else value
        rows.append({"target": name, "limit": limit, "unit": unit, "figure": value, "met": median <= limit})
    return rows


def _listening(port: int) -> bool:
    sock = http_client.connect(port, 0.2)
    if sock is None:
        return False
    sock.close()
    return True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    # Measure the CLI as an installed one runs: a wheel install compiles its bytecode, and a shell with
    # PYTHONDONTWRITEBYTECODE would otherwise recompile every module of an editable install each run.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    compileall.compile_dir(str(SRC), quiet=1)
    busy = [port for port in SYNC_PORTS if _listening(port)]
    if busy:
        print(f"benchmarks: ports {busy} are in use; stop what listens there first", file=sys.stderr)
        return 2
    runs = 5 if args.quick else 20
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
        },
        "cli": bench_cli(runs),
        "api": bench_api(3 if args.quick else 10),
        "reset": bench_scan_and_reset(runs, 1 if args.quick else 3),
        "reset_20_with_5_stubborn": bench_reset_with_stubborn(20, 5),
        "start": bench_start(3 if args.quick else 7),
        "supersede": bench_supersede(2 if args.quick else 5),
        "idle": bench_idle(5.0 if args.quick else 20.0),
    }
    results["targets"] = verdicts(results)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for row in results["targets"]:
        figure = row["figure"]
        shown = (
            f"min {figure['min']} / median {figure['median']} / max {figure['max']}"
            if isinstance(figure, dict)
            else str(figure)
        )
        verdict = "met " if row["met"] else "MISS"
        print(f"{verdict} {row['target']}: {shown} (target <= {row['limit']} {row['unit']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
