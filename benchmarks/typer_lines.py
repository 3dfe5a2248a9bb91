"""The CLI figures on each typer line (issue 23, ADR 0017): one venv per line, each against its floors.

    python benchmarks/typer_lines.py --python .venv/bin/python --python /tmp/newest/bin/python \\
        [--ports 9400-9449] [--daemons 20] [--runs 20] [--out benchmarks/typer_lines.json]

Each ``--python`` is a venv with synclease installed (editable or from the wheel) on some typer line.
In each venv, and paired run by run, three floors and three commands are timed as whole processes:

- ``floor_app``: a minimal typer app, one command with one option (``--name x``), the floor of the
  targets; ``floor_flag``: the same with a boolean flag; ``floor_import``: ``python -c "import typer"``
  (the floor of ADR 0012's round);
- ``sync start --json`` reusing a healthy singleton, ``sync status --json``, and ``auth doctor --json``
  with ``--daemons`` live daemons on ``--ports`` (each in its own temporary root).

Every figure is min / median / max; a ratio is taken pair by pair against ``floor_app`` (the target's
floor) and, for comparison with ADR 0012's round, against ``floor_import``. Daemons are
stopped with ``sync stop`` and, if that fails, killed by the PID their own ``sync start`` reported.
Nothing else listens on ``--ports`` while it runs (it refuses to start otherwise).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parent.parent / "src"
APP = """import typer

app = typer.Typer()


@app.command()
def main(name: {annotation} = typer.Option({default}, "--name")) -> None:
    typer.echo(name)


if __name__ == "__main__":
    app()
"""


def stats(samples: list[float], digits: int = 2) -> dict[str, float]:
    return {
        "min": round(min(samples), digits),
        "median": round(statistics.median(samples), digits),
        "max": round(max(samples), digits),
    }


def timed(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False, timeout=120)
    took = (time.perf_counter() - began) * 1000
    if proc.returncode not in (0, 1):
        raise SystemExit(f"`{' '.join(argv)}` exited {proc.returncode}: {proc.stderr.decode()[-400:]}")
    return took


def ports_free(ports: range) -> None:
    for port in ports:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(f"port {port} is in use; run this with nothing listening on {ports}")


def versions(py: str) -> dict[str, str | None]:
    code = (
        "import importlib.metadata as m, json\n"
        "def v(p):\n"
        "    try: return m.version(p)\n"
        "    except m.PackageNotFoundError: return None\n"
        "print(json.dumps({p: v(p) for p in ('typer', 'click', 'pydantic', 'synclease')}))"
    )
    proc = subprocess.run([py, "-c", code], check=False, capture_output=True, text=True)
    return dict(json.loads(proc.stdout))


def measure_line(py: str, ports: range, daemons: int, runs: int, work: Path) -> dict[str, Any]:
    exe = str(Path(py).with_name("synclease"))
    base = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLEASE_")}
    base.pop("PYTHONDONTWRITEBYTECODE", None)  # as a wheel install: compiled once (ADR 0012)
    subprocess.run([py, "-m", "compileall", "-q", str(SRC)], check=False, capture_output=True)
    base["SYNCLEASE_PORT_RANGE"] = f"{ports.start}-{ports.stop - 1}"
    floors = {}
    for name, annotation, default, args in (
        ("floor_app", "str", '"world"', ["--name", "x"]),
        ("floor_flag", "bool", "False", ["--name"]),
    ):
        path = work / f"{name}.py"
        path.write_text(APP.format(annotation=annotation, default=default))
        floors[name] = [py, str(path), *args]
    floors["floor_import"] = [py, "-c", "import typer"]

    homes = [work / f"root-{i}" for i in range(daemons)]
    pids: list[int] = []
    try:
        for home in homes:
            doc = json.loads(
                subprocess.run(
                    [exe, "sync", "start", "--json"],
                    env={**base, "SYNCLEASE_HOME": str(home)},
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            pids.append(doc["pid"])
        env = {**base, "SYNCLEASE_HOME": str(homes[0])}
        commands = {
            "sync_start_reuse": [exe, "sync", "start", "--json"],
            "sync_status": [exe, "sync", "status", "--json"],
            f"doctor_json_{daemons}": [exe, "auth", "doctor", "--json"],
        }
        samples: dict[str, list[float]] = {name: [] for name in [*floors, *commands]}
        ratios: dict[str, list[float]] = {name: [] for name in commands}
        old_ratios: dict[str, list[float]] = {name: [] for name in commands}
        for argv in [*floors.values(), *commands.values()]:
            timed(argv, env)  # warm the page cache
        for _ in range(runs):
            floor_times = {name: timed(argv, env) for name, argv in floors.items()}
            for name, took in floor_times.items():
                samples[name].append(took)
            for name, argv in commands.items():
                took = timed(argv, env)
                samples[name].append(took)
                ratios[name].append(took / floor_times["floor_app"])
                old_ratios[name].append(took / floor_times["floor_import"])
    finally:
        for home, pid in zip(homes, pids, strict=False):
            stop = subprocess.run(
                [exe, "sync", "stop"],
                env={**base, "SYNCLEASE_HOME": str(home)},
                capture_output=True,
                check=False,
            )
            if stop.returncode != 0:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    return {
        "versions": versions(py),
        "ms": {name: stats(values) for name, values in samples.items()},
        "ratio_to_floor_app": {name: stats(values) for name, values in ratios.items()},
        "ratio_to_floor_import": {name: stats(values) for name, values in old_ratios.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--python", action="append", required=True, help="a venv's python (repeat)")
    parser.add_argument("--ports", default="9400-9449")
    parser.add_argument("--daemons", type=int, default=20)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lo, _, hi = args.ports.partition("-")
    ports = range(int(lo), int(hi) + 1)
    if args.daemons > len(ports):
        raise SystemExit(f"{args.daemons} daemons do not fit in {args.ports}")
    ports_free(ports)
    result: dict[str, Any] = {"ports": args.ports, "daemons": args.daemons, "runs": args.runs, "lines": {}}
    for py in args.python:
        with tempfile.TemporaryDirectory(prefix="synclease-typer-line-") as tmp:
            line = measure_line(py, ports, args.daemons, args.runs, Path(tmp))
        result["lines"][f"typer {line['versions']['typer']}"] = line
        print(json.dumps({f"typer {line['versions']['typer']}": line}, indent=2), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
