"""Issue 19, the listener table: does the doctor's cost follow our fleet, or everything on the host?

Makes the crowd itself: ``--crowd`` unrelated processes (``sleep``, a public tool) each holding
``--fds`` descriptors (socketpair ends, so a process walk has sockets to resolve), started here and
ended here, by PID, always (also on Ctrl-C or SIGTERM). Then, without and with the crowd:

* in-process, the kernel listener table read (sock_diag, and the ``/proc/net/tcp{,6}`` fallback)
  against ``psutil.net_connections(kind="tcp")``, the old whole-host walk;
* the scan (``adapters.probe.scan``, in-process) at each ``--daemons`` count of live daemons;
* ``auth doctor --json`` at the largest count not above 20 (the target's 20): whole process, paired
  with the floor (``python -c "import typer"``) run by run, and the ``scan.duration_ms`` it reports.

Every figure is min / median / max. Run it on a quiet machine with nothing on ``--port-range``:

    .venv/bin/python benchmarks/crowd.py [--out benchmarks/results_crowd.json] [--quick]
    .venv/bin/python benchmarks/crowd.py --port-range 9401-9408 --daemons 0,2,4 --crowd 100 --quick
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
from run import SCRIPT, bench, paired, stats, timed_ms

from synclease.adapters import kernel_table
from synclease.adapters.probe import scan

#: target name -> (figure path in results, limit)
TARGETS = {
    "auth doctor --json, 20 live daemons, quiet host (x floor)": ("quiet.doctor_json.ratio", 1.5),
    "auth doctor --json, 20 live daemons, crowded host (x floor)": ("crowd.doctor_json.ratio", 1.6),
    "scan.duration_ms, 20 live daemons, quiet host (ms)": ("quiet.doctor_scan_ms", 20.0),
    "scan.duration_ms, 20 live daemons, crowded host (ms)": ("crowd.doctor_scan_ms", 20.0),
}


class Crowd:
    """``count`` ``sleep`` processes, each holding ``fds`` inherited socket descriptors; ended by PID."""

    def __init__(self, count: int, fds: int) -> None:
        self.count, self.fds = count, fds
        self.children: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Crowd:
        pairs = [socket.socketpair() for _ in range(max(1, self.fds // 2))]
        held = [s.fileno() for pair in pairs for s in pair][: self.fds]
        try:
            for _ in range(self.count):
                self.children.append(
                    subprocess.Popen(
                        ["sleep", "86400"], pass_fds=held, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
                    )
                )
        except BaseException:
            self.end()
            raise
        finally:
            for pair in pairs:
                for sock in pair:
                    sock.close()
        return self

    def end(self) -> None:
        for child in self.children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()  # by its PID, which we started
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)
        self.children.clear()

    def __exit__(self, *exc: object) -> None:
        self.end()


@contextlib.contextmanager
def crowd_if(enabled: bool, count: int, fds: int) -> Iterator[None]:
    if not enabled:
        yield
        return
    with Crowd(count, fds):
        yield


def table_reads(runs: int) -> dict[str, Any]:
    """The kernel table read vs psutil's whole-host walk, in this process."""
    psutil.net_connections(kind="tcp")  # warm-up
    return {
        "sock_diag_ms": stats(timed_ms(kernel_table.read_sock_diag, runs), 3),
        "proc_net_ms": stats(timed_ms(kernel_table.read_proc_net, runs), 3),
        "psutil_net_connections_ms": stats(timed_ms(lambda: psutil.net_connections(kind="tcp"), runs), 3),
    }


def doctor_scan_ms(env: dict[str, str], runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        done = subprocess.run(
            [SCRIPT, "auth", "doctor", "--json"], env=env, capture_output=True, text=True, check=False
        )
        samples.append(float(json.loads(done.stdout)["scan"]["duration_ms"]))
    return stats(samples)


def one_host(crowded: bool, args: argparse.Namespace, counts: list[int], runs: int) -> dict[str, Any]:
    lo, hi = (int(p) for p in args.port_range.split("-"))
    ports = range(lo, hi + 1)
    out: dict[str, Any] = {"crowd": {"processes": args.crowd if crowded else 0, "fds_each": args.fds}}
    with crowd_if(crowded, args.crowd, args.fds):
        out["table_read"] = table_reads(runs)
        scans: dict[str, Any] = {}
        with bench(args.port_range) as b:
            live = 0
            for target in counts:
                b.stale_pile(target - live)
                live = target
                scans[f"daemons_{target}"] = stats(timed_ms(lambda: scan(ports), runs))
                if target == max(c for c in counts if c <= 20):
                    out["doctor_daemons"] = target
                    out["doctor_json"] = paired([SCRIPT, "auth", "doctor", "--json"], b.env, runs)
                    out["doctor_scan_ms"] = doctor_scan_ms(b.env, runs)
        out["scan_ms"] = scans
    return out


def _figure(results: dict[str, Any], path: str) -> Any:
    node: Any = results
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results_crowd.json"))
    parser.add_argument("--port-range", default="9400-9449")
    parser.add_argument("--daemons", default="0,10,20,45")
    parser.add_argument("--crowd", type=int, default=1000)
    parser.add_argument("--fds", type=int, default=64)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    counts = sorted({int(c) for c in args.daemons.split(",")})
    runs = 5 if args.quick else 20

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through every ``with``: the crowd and daemons end

    signal.signal(signal.SIGTERM, stop)
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "date": time.strftime("%Y-%m-%d"),
        },
        "quiet": one_host(False, args, counts, runs),
        "crowd": one_host(True, args, counts, runs),
    }
    results["targets"] = []
    for name, (path, limit) in TARGETS.items():
        figure = _figure(results, path)
        met = isinstance(figure, dict) and figure["median"] <= limit
        results["targets"].append({"target": name, "limit": limit, "figure": figure, "met": met})
        shown = f"{figure['min']} / {figure['median']} / {figure['max']}" if isinstance(figure, dict) else "-"
        print(f"{'met ' if met else 'MISS'} {name}: min/median/max {shown} (target <= {limit})")
    for host in ("quiet", "crowd"):
        reads = results[host]["table_read"]
        print(
            host,
            {k: v["median"] for k, v in reads.items()},
            {k: v["median"] for k, v in results[host]["scan_ms"].items()},
        )
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
