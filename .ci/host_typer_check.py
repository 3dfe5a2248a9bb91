"""A host on the newest typer installs synclease and keeps its typer (issue 23, ADR 0017).

Run by ``.ci/run`` with the project venv's Python (which has ``build``). In a temporary directory:

1. build the wheel (``python -m build --wheel``);
2. a fresh venv gets the newest typer first, as a host that keeps its dependencies current has it;
3. ``pip install <wheel>``: typer's version must be unchanged and ``pip check`` clean (nothing
   downgraded, no conflict reported);
4. ``examples/hostcli`` (``build --json`` and ``doctor``), ``synclease sync status``,
   ``synclease auth doctor --json`` and ``synclease auth doctor --reset`` run from that venv (a
   temporary SYNCLEASE_HOME; ports from ``SYNCLEASE_PORT_RANGE``, default 9445-9448);
5. the daemon it started is stopped with ``sync stop``; if anything fails first, its PID is killed
   in ``finally`` (only a PID this check's own ``build --json`` reported).

Exit 0 when every check holds; otherwise the first failed check's message.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
PORTS = os.environ.get("SYNCLEASE_PORT_RANGE", "9445-9448")


def step(title: str) -> None:
    print(f"host typer check: {title}", flush=True)


def run(argv: list[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> str:
    proc = subprocess.run(argv, check=False, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode not in ok:
        raise SystemExit(
            f"host typer check: `{' '.join(argv)}` exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


def version_of(py: Path, dist: str) -> str:
    return run([str(py), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"]).strip()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="synclease-host-typer-") as tmp:
        work = Path(tmp)
        step("build the wheel")
        run([sys.executable, "-m", "build", "--wheel", "--outdir", str(work / "dist"), str(CHECKOUT)])
        (wheel,) = (work / "dist").glob("synclease-*.whl")

        step("a host venv on the newest typer")
        venv = work / "host"
        run([sys.executable, "-m", "venv", str(venv)])
        py = venv / "bin" / "python"
        run([str(py), "-m", "pip", "install", "--quiet", "--upgrade", "typer"])
        typer_before = version_of(py, "typer")

        step(f"install {wheel.name} beside typer {typer_before}")
        run([str(py), "-m", "pip", "install", "--quiet", str(wheel)])
        typer_after = version_of(py, "typer")
        if typer_after != typer_before:
            raise SystemExit(f"host typer check: typer went from {typer_before} to {typer_after}")
        run([str(py), "-m", "pip", "check"])

        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCLEASE_")}
        env.update(SYNCLEASE_HOME=str(work / "home"), SYNCLEASE_PORT_RANGE=PORTS, PYTHONNOUSERSITE="1")
        exe = str(venv / "bin" / "synclease")
        hostcli = str(CHECKOUT / "examples" / "hostcli" / "hostcli.py")
        started: int | None = None
        try:
            step("examples/hostcli build --json and doctor")
            built = json.loads(run([str(py), hostcli, "build", "--json"], env))
            started = built["daemon_pid"]
            run([str(py), hostcli, "doctor"], env)
            step("synclease sync status, auth doctor --json, auth doctor --reset")
            status = json.loads(run([exe, "sync", "status", "--json"], env))
            assert status["healthy"] is True, status
            doc = json.loads(run([exe, "auth", "doctor", "--json"], env, ok=(0, 1)))
            assert doc["daemon"] is not None and doc["daemon"]["pid"] == started, doc["daemon"]
            run([exe, "auth", "doctor", "--reset"], env)
            run([exe, "sync", "stop"], env)
            started = None
        finally:
            if started is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(started, signal.SIGKILL)
        step(f"passed on typer {typer_after} with {version_of(py, 'synclease')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
