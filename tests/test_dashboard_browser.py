"""The dashboard page in a real headless Chromium: it shows the live singleton and an orphan with its class."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Sandbox, wait_for
from tests.test_dashboard import Dashboards, dash  # noqa: F401  (dash is a fixture)

pytestmark = pytest.mark.live

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def render_dom(url: str, profile: Path, screenshot: Path | None = None) -> str:
    assert CHROMIUM is not None
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
    ]
    if screenshot is not None:
        subprocess.run(
            [CHROMIUM, *flags, "--window-size=1200,900", f"--screenshot={screenshot}", url],
            capture_output=True,
            timeout=60,
        )
    out = subprocess.run([CHROMIUM, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=60)
    return out.stdout


@pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="chromium is not installed (.ci/run installs it)",
)
def test_page_shows_singleton_and_orphan_with_its_class(
    sandbox: Sandbox, dash: Dashboards, tmp_path: Path
) -> None:
    assert CHROMIUM is not None, "CI must have chromium: .ci/run installs it"
    # An orphan: a daemon that stopped renewing a short lease and refuses to retire.
    stale = sandbox.popen(
        [sys.executable, "-m", "synclease.daemons.sync", "--replace"],
        env={
            "SYNCLEASE_FAILPOINTS": "stall_heartbeat,ignore_retire",
            "SYNCLEASE_LEASE_TTL_SECONDS": "0.5",
            "SYNCLEASE_HEARTBEAT_SECONDS": "0.1",
            "SYNCLEASE_VERSION": "3.2.2",
        },
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: any(lease.get("pid") == stale.pid for lease in sandbox.leases()))
    # The singleton, started by hand (not by `sync start`, whose startup reaper would sweep the orphan).
    live = sandbox.run_daemon("--replace")
    doctor = lambda: sandbox.cli_json("auth", "doctor")  # noqa: E731
    wait_for(lambda: (d := doctor()["daemon"]) is not None and d["pid"] == live.pid)
    wait_for(
        lambda: any(o["pid"] == stale.pid and o["cleanup_class"] == "safe_auto" for o in doctor()["orphans"])
    )

    project = dash.project()
    page = dash.start(project)
    dom = render_dom(page["url"], tmp_path / "profile", tmp_path / "page.png")

    assert 'data-loaded="true"' in dom
    assert str(live.pid) in dom.split('id="singleton"', 1)[1].split("</div>", 1)[0]
    assert f'data-class="safe_auto" data-pid="{stale.pid}"' in dom or (
        f'data-pid="{stale.pid}"' in dom and 'data-class="safe_auto"' in dom
    )
    assert "synclease auth doctor --reset" in dom
    assert (tmp_path / "page.png").exists()
    keep = os.environ.get("SYNCLEASE_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(tmp_path / "page.png", keep)
