"""Install synclease the way users do and run it (issue 13): from a built wheel, and with pipx.

Run by ``.ci/run`` with the project venv's Python (which has ``build`` and ``pipx``). Everything happens
in a temporary directory, away from the checkout, so ``src/`` cannot be imported by accident:

1. build the sdist and, from it, the wheel (``python -m build``), and check what the wheel holds;
2. a fresh venv, ``pip install <wheel>`` (not editable), then ``synclease sync start --json``,
   ``synclease auth doctor --json`` and ``synclease sync stop``; the daemon must be the venv's Python
   running the installed package, reporting the wheel's version;
3. ``pipx install <checkout>`` into a temporary PIPX_HOME, then ``synclease --version`` and
   ``synclease auth doctor --json`` from pipx's bin directory.

The daemon it starts is stopped with ``sync stop``; if anything fails first, the PID it started is
killed in ``finally``. Exit 0 when every check holds; otherwise the first failed check's message.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parent.parent
PORTS = range(9440, 9445)  # after the suites have run: nothing else listens here


def step(title: str) -> None:
    print(f"wheel check: {title}", flush=True)


def run(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(argv, check=False, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(
            f"wheel check: `{' '.join(argv)}` exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


def version() -> str:
    text = (CHECKOUT / "src" / "synclease" / "_version.py").read_text()
    found = re.search(r'__version__ = "([^"]+)"', text)
    assert found, "no __version__ in src/synclease/_version.py"
    return found.group(1)


def ports_free() -> None:
    for port in PORTS:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(f"wheel check: port {port} is in use; stop what listens there")


def build(work: Path, expected: str) -> Path:
    step("build the sdist, and the wheel from it")
    dist = work / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(CHECKOUT)])
    wheels = list(dist.glob("synclease-*.whl"))
    sdists = list(dist.glob("synclease-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, f"expected one wheel and one sdist, got {os.listdir(dist)}"
    assert wheels[0].name.startswith(f"synclease-{expected}-"), wheels[0].name
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    for needed in (
        "synclease/py.typed",
        "synclease/_version.py",
        "synclease/daemons/sync/__main__.py",
        "synclease/daemons/dashboard/__main__.py",
    ):
        assert needed in names, f"the wheel lacks {needed}"
    assert not any(n.startswith(("tests/", "src/")) for n in names), "the wheel carries tests/ or src/"
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "synclease = synclease.cli.main:main" in zipfile.ZipFile(wheels[0]).read(entry).decode()
    return wheels[0]


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCLEASE_", "PYTHON"))}
    env.update(
        SYNCLEASE_HOME=str(home), SYNCLEASE_PORT_RANGE=f"{PORTS.start}-{PORTS.stop - 1}", PYTHONNOUSERSITE="1"
    )
    return env


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")


def from_the_wheel(work: Path, wheel: Path, expected: str) -> None:
    step("install the wheel into a fresh venv (not editable)")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    run([str(py), "-m", "pip", "install", "--quiet", str(wheel)])
    where = run([str(py), "-c", "import synclease; print(synclease.__file__)"], cwd=work).strip()
    assert "site-packages" in where and str(CHECKOUT) not in where, f"synclease imports from {where}"
    assert not list(venv.glob("lib/python*/site-packages/*.pth")) or all(
        str(CHECKOUT) not in p.read_text() for p in venv.glob("lib/python*/site-packages/*.pth")
    ), "an editable .pth points at the checkout"

    exe = str(venv / "bin" / "synclease")
    env = cli_env(work / "home")
    pid: int | None = None
    try:
        step("synclease sync start --json")
        started: dict[str, Any] = json.loads(run([exe, "sync", "start", "--json"], env=env, cwd=work))
        pid = started["pid"]
        assert started["package_version"] == expected, started
        argv = cmdline(pid)
        assert argv[0] == str(py) and argv[1:3] == ["-m", "synclease.daemons.sync"], argv
        step(f"the daemon (pid {pid}) is {argv[0]} {' '.join(argv[1:3])}, version {expected}")

        step("synclease auth doctor --json")
        doc = json.loads(run([exe, "auth", "doctor", "--json"], env=env, cwd=work))
        daemon = doc["daemon"]
        assert daemon and daemon["pid"] == pid and daemon["package_version"] == expected, daemon
        assert daemon["lease_state"] == "live" and doc["orphans"] == [], doc

        step("synclease sync stop")
        run([exe, "sync", "stop"], env=env, cwd=work)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{pid}").exists(), f"pid {pid} still runs after sync stop"
        pid = None
    finally:
        if pid is not None and Path(f"/proc/{pid}").exists() and str(py) in cmdline(pid)[0]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def with_pipx(work: Path, expected: str) -> None:
    step("pipx install <checkout>")
    env = cli_env(work / "pipx-root")
    env.update(
        PIPX_HOME=str(work / "pipx"), PIPX_BIN_DIR=str(work / "pipx-bin"), PIPX_MAN_DIR=str(work / "man")
    )
    run([sys.executable, "-m", "pipx", "install", str(CHECKOUT)], env=env, cwd=work)
    exe = str(work / "pipx-bin" / "synclease")
    assert run([exe, "--version"], env=env, cwd=work).strip() == f"synclease {expected}"
    doc = json.loads(run([exe, "auth", "doctor", "--json"], env=env, cwd=work))
    assert doc["daemon"] is None and doc["schema_version"] == 2, doc
    step(f"pipx's synclease is {expected} and its doctor answers")


def main() -> int:
    expected = version()
    ports_free()
    with tempfile.TemporaryDirectory(prefix="synclease-wheel-") as tmp:
        work = Path(tmp)
        wheel = build(work, expected)
        from_the_wheel(work, wheel, expected)
        with_pipx(work, expected)
    step("passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
