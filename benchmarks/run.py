"""Measure the performance targets (benchmarks/README.md) with live daemons. Prints a table, writes JSON.

Run on an otherwise idle machine, with nothing else on the sync range:

    .venv/bin/python benchmarks/run.py [--out benchmarks/results.json] [--quick]

Every daemon it starts lives in a temporary root and is killed by PID at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

from synclease.adapters import http_client as httpc
from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.probe import scan
from synclease.adapters.root import DaemonRoot
from synclease.services.survey import survey

PY = sys.executable
FULL_RANGE = "9400-9449"


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
            [PY, "-m", "synclease", *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            check=False,
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

    def wait_healthy(self, pid: int, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        store = LeaseStore(DaemonRoot(self.root))
        while time.monotonic() < deadline:
            for entry in store.list():
                if entry.lease and entry.lease.pid == pid:
                    reply = httpc.get_json(entry.lease.port, "/api/health", 0.5)
                    if reply.ok:
                        return entry.lease.port
            time.sleep(0.01)
        raise RuntimeError(f"daemon {pid} never became healthy")

    def stale_pile(self, n: int, failpoints: str = "stall_heartbeat", ttl: str = "0.5") -> list[int]:
        """``n`` same-scope daemons whose leases expire while they keep answering health."""
        pids = []
        for i in range(n):
            # --managed: not the singleton, and it asks nobody to retire, so the pile stays whole.
            proc = self.daemon(
                "--managed",
                SYNCLEASE_FAILPOINTS=failpoints,
                SYNCLEASE_LEASE_TTL_SECONDS=ttl,
                SYNCLEASE_HEARTBEAT_SECONDS="0.1",
                SYNCLEASE_VERSION=f"3.2.{i}",
            )
            self.wait_healthy(proc.pid)
            pids.append(proc.pid)
        time.sleep(float(ttl) + 0.2)  # let every lease expire (benchmark set-up, not a test)
        return pids

    def spawned_pids(self) -> set[int]:
        store = LeaseStore(DaemonRoot(self.root))
        return {e.lease.pid for e in store.list() if e.lease}

    def cleanup(self) -> None:
        pids = self.spawned_pids() | {c.pid for c in self.children}
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                proc = psutil.Process(pid)
                if proc.environ().get("SYNCLEASE_HOME") == str(self.root):
                    os.kill(pid, signal.SIGKILL)
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
                psutil.Process(pid).wait(timeout=5)


@contextlib.contextmanager
def bench(**env: str) -> Iterator[Bench]:
    with tempfile.TemporaryDirectory(prefix="synclease-bench-") as tmp:
        b = Bench(Path(tmp) / "root", **env)
        try:
            yield b
        finally:
            b.cleanup()


def timed(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1), "runs": runs}


def bench_scan_and_doctor(runs: int) -> dict[str, Any]:
    with bench() as b:
        b.stale_pile(20)
        store = LeaseStore(DaemonRoot(b.root))
        ports = range(9400, 9450)
        scan_only = timed(lambda: scan(ports), runs)
        whole = timed(lambda: survey(store, SYSTEM_CLOCK, ports), runs)
        doctor = timed(lambda: b.cli("auth", "doctor", "--json"), max(3, runs // 2))
        doc = json.loads(b.cli("auth", "doctor", "--json").stdout)
        classes = sorted({o["cleanup_class"] for o in doc["orphans"]})
    return {
        "scan_20_daemons": scan_only,
        "survey_20_daemons": whole,
        "doctor_json_process_20_daemons": doctor,
        "orphans_seen": len(doc["orphans"]) + (1 if doc["daemon"] else 0),
        "classes": classes,
    }


def bench_reset(n: int, ignore_sigterm: int) -> dict[str, Any]:
    with bench() as b:
        b.stale_pile(n - ignore_sigterm)
        if ignore_sigterm:
            b.stale_pile(ignore_sigterm, failpoints="stall_heartbeat,ignore_retire,ignore_sigterm")
        started = time.perf_counter()
        proc = b.cli("auth", "doctor", "--reset", "--json")
        elapsed = (time.perf_counter() - started) * 1000
        doc = json.loads(proc.stdout)
        paths: dict[str, int] = {}
        for item in doc["reset_result"]["swept"]:
            paths[item["cleanup_path"]] = paths.get(item["cleanup_path"], 0) + 1
    return {
        "daemons": n,
        "ignoring_sigterm": ignore_sigterm,
        "reset_ms": round(elapsed, 1),
        "swept": len(doc["reset_result"]["swept"]),
        "failed": len(doc["reset_result"]["failed"]),
        "paths": paths,
        "exit_code": proc.returncode,
    }


def bench_start(runs: int) -> dict[str, Any]:
    cold = []
    for _ in range(max(3, runs // 3)):
        with bench() as b:
            started = time.perf_counter()
            out = b.cli("sync", "start", "--json")
            cold.append((time.perf_counter() - started) * 1000)
            assert out.returncode == 0, out.stderr
    spawn_to_healthy = []
    for _ in range(max(3, runs // 3)):
        with bench() as b:
            started = time.perf_counter()
            proc = b.daemon()
            b.wait_healthy(proc.pid)
            spawn_to_healthy.append((time.perf_counter() - started) * 1000)
    with bench() as b:
        b.cli("sync", "start", "--json")
        reuse = timed(lambda: b.cli("sync", "start", "--json"), runs)
    return {
        "cold_sync_start_ms": round(statistics.median(cold), 1),
        "spawn_to_healthy_ms": round(statistics.median(spawn_to_healthy), 1),
        "sync_start_healthy_singleton": reuse,
    }


def exited(pid: int, timeout: float = 10.0) -> float:
    """perf_counter time at which ``pid`` had exited (a zombie counts: reaping is its parent's business,
    and a detached daemon's parent is init, which may reap late)."""
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
    """Old daemon refuses the polite retire: it must leave by itself within one heartbeat."""
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
    return {
        "heartbeat_ms": heartbeat * 1000,
        "supersede_to_exit_ms": {
            "median": round(statistics.median(latencies), 1),
            "max": round(max(latencies), 1),
            "runs": runs,
        },
    }


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


def main() -> int:
    # Measure an installed CLI as users run it: with bytecode caches, whatever this shell says.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "src"), quiet=1)
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs = 5 if args.quick else 15
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "scan": bench_scan_and_doctor(runs),
        "reset_20_safe_auto": bench_reset(20, 0),
        "reset_20_with_5_ignoring_sigterm": bench_reset(20, 5),
        "start": bench_start(runs),
        "supersede": bench_supersede(3 if args.quick else 5),
        "idle": bench_idle(5.0 if args.quick else 10.0),
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
