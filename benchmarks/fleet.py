"""Fleet-cost figures of issues #19 and #24 (the ones ``run.py`` does not take): one-wave resets, the
idle daemon, cold start, the import of ``ensure``, and what a draining daemon costs.

    .venv/bin/python benchmarks/fleet.py [--ports 9400-9449] [--daemons 45] [--idle-seconds 60]
                                         [--runs 5] [--out benchmarks/fleet.json] [--only reset,idle,...]

* ``reset``: ``auth doctor --reset --json`` of N expired daemons that refuse the polite retire
  (``SYNCLEASE_FAILPOINTS=stall_heartbeat,ignore_retire``: they need SIGTERM), and of N polite ones
  (``stall_heartbeat``). Target: N=45 stubborn <= 2.0 s, 45 polite <= 1.0 s. 45 daemons need the
  whole range (``--ports 9400-9449``); at a small scale, give a sub-range and a smaller N.
* ``idle``: one daemon started by ``sync start`` and left alone: wake-ups a second (voluntary context
  switches summed over its threads, from ``/proc/<pid>/task/*/status``, Linux), threads and RSS.
  Target: <= 1 wake-up/s over 60 s, <= 4 threads, <= 24 MB.
* ``start``: cold ``sync start --json`` on an empty root (target <= 300 ms); ``ensure_import``:
  ``from synclease import ensure`` in a bare interpreter (target <= 20 ms).
* ``drain``: a daemon asked to retire while an upload is held by a slow server: lease writes a second
  (each renewal replaces the file: a new inode) and the daemon's wake-ups a second while it drains.

Every figure is min / median / max over ``--runs``. Daemons live in temporary roots, bind only the
given ports and are killed by PID at the end (``run.py``'s :class:`Bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import psutil  # noqa: E402
from run import PY, SCRIPT, bench, stats  # noqa: E402
from tests.receiver import Receiver  # noqa: E402

from synclease.adapters import http_client  # noqa: E402
from synclease.adapters.lease_store import LeaseStore  # noqa: E402
from synclease.adapters.root import DaemonRoot  # noqa: E402

TARGETS = {
    "reset_stubborn_ms": 2000.0,
    "reset_polite_ms": 1000.0,
    "idle.wakeups_per_s": 1.0,
    "idle.threads": 4,
    "idle.rss_mb": 24.0,
    "start.cold_ms": 300.0,
    "start.ensure_import_ms": 20.0,
}


def wakeups(pid: int) -> int:
    """Voluntary context switches summed over the process's threads (Linux)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/status") as status:
            total += sum(int(line.split()[1]) for line in status if line.startswith("voluntary_ctxt"))
    return total


def bench_reset(ports: str, daemons: int, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, failpoints in (("stubborn", "stall_heartbeat,ignore_retire"), ("polite", "stall_heartbeat")):
        samples, paths = [], []
        for _ in range(runs):
            with bench(ports) as b:
                b.stale_pile(daemons, failpoints=failpoints)
                started = time.perf_counter()
                proc = b.cli("auth", "doctor", "--reset", "--json")
                samples.append((time.perf_counter() - started) * 1000)
                swept = json.loads(proc.stdout)["reset_result"]["swept"]
                paths.append(sorted(item["cleanup_path"] for item in swept))
        out[f"reset_{name}_ms"] = stats(samples)
        every = {path for run in paths for path in run}
        out[f"reset_{name}_paths"] = {p: sum(run.count(p) for run in paths) / runs for p in every}
    out["daemons"] = daemons
    return out


def bench_idle(ports: str, seconds: float) -> dict[str, Any]:
    with bench(ports) as b:
        pid = json.loads(b.cli("sync", "start", "--json").stdout)["pid"]
        proc = psutil.Process(pid)
        time.sleep(1.0)  # let start-up settle (set-up of a benchmark, not a test)
        before = wakeups(pid)
        time.sleep(seconds)
        after = wakeups(pid)
        return {
            "wakeups_per_s": round((after - before) / seconds, 2),
            "threads": proc.num_threads(),
            "rss_mb": round(proc.memory_info().rss / 2**20, 1),
            "window_s": seconds,
        }


def bench_start(ports: str, runs: int) -> dict[str, Any]:
    cold = []
    for _ in range(runs):
        with bench(ports) as b:
            started = time.perf_counter()
            out = b.cli("sync", "start", "--json")
            cold.append((time.perf_counter() - started) * 1000)
            assert out.returncode == 0, out.stderr
    probe = (
        "import time; t = time.perf_counter(); from synclease import ensure; "
        "print((time.perf_counter() - t) * 1000)"
    )
    imports = [float(subprocess.check_output([PY, "-c", probe], text=True)) for _ in range(runs)]
    return {"cold_ms": stats(cold), "ensure_import_ms": stats(imports)}


def _count_writes(path: Path, stop: threading.Event, seen: list[int]) -> None:
    last = None
    while not stop.is_set():
        try:
            inode = path.stat().st_ino
        except FileNotFoundError:
            inode = None
        if inode is not None and inode != last:
            seen.append(inode)
            last = inode
        time.sleep(0.002)


def bench_drain(ports: str, seconds: float) -> dict[str, Any]:
    with Receiver() as rx, bench(ports) as b:
        login = [SCRIPT, "auth", "login", "--server", rx.url, "--principal", "bench"]
        token = "sltok-bench-0000\n"
        subprocess.run(login, env=b.env, input=token, text=True, check=True, capture_output=True)
        rx.hold()
        push = subprocess.run(
            [SCRIPT, "sync", "push", "-", "--json"],
            env=b.env,
            input='{"type": "bench.event", "data": {}}\n',
            text=True,
            capture_output=True,
            check=True,
        )
        pid = json.loads(push.stdout)["daemon"]["pid"]
        deadline = time.monotonic() + 20
        while rx.arrived < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        lease = next(e.lease for e in LeaseStore(DaemonRoot(b.root)).list() if e.lease and e.lease.pid == pid)
        assert http_client.post(lease.port, "/api/retire", lease.token, 2.0, {}).ok
        stop, seen = threading.Event(), []
        path = b.root / "leases" / "sync" / f"{lease.instance_id}.json"
        watcher = threading.Thread(target=_count_writes, args=(path, stop, seen), daemon=True)
        before = wakeups(pid)
        watcher.start()
        time.sleep(seconds)
        after = wakeups(pid)
        stop.set()
        watcher.join()
        rx.release()
        psutil.Process(pid).wait(20)
    return {
        "lease_writes_per_s": round((len(seen) - 1) / seconds, 2),
        "wakeups_per_s": round((after - before) / seconds, 2),
        "window_s": seconds,
    }


def verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for where, limit in TARGETS.items():
        value: Any = results
        for key in where.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        median = value["median"] if isinstance(value, dict) else value
        rows.append({"figure": where, "limit": limit, "value": value, "met": median <= limit})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", default="9400-9449")
    parser.add_argument("--daemons", type=int, default=45)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--drain-seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="reset,idle,start,drain")
    parser.add_argument("--out", type=Path, default=HERE / "fleet.json")
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    chosen = set(args.only.split(","))
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "reset": lambda: bench_reset(args.ports, args.daemons, args.runs),
        "idle": lambda: bench_idle(args.ports, args.idle_seconds),
        "start": lambda: bench_start(args.ports, args.runs),
        "drain": lambda: bench_drain(args.ports, args.drain_seconds),
    }
    results: dict[str, Any] = {"ports": args.ports}
    for name, step in steps.items():
        if name in chosen:
            figures = step()
            if name == "reset":
                results.update(figures)
            else:
                results[name] = figures
    results["targets"] = verdicts(results)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
