"""``python -m synclease.dashboard --project DIR [--port-hint N]``: the detached dashboard process.

What ``synclease dashboard`` spawns. Imports neither typer nor rich, to keep an idle dashboard small.
"""

from __future__ import annotations

import argparse

from synclease import package_version
from synclease.clock import SYSTEM_CLOCK
from synclease.constants import DASHBOARD_PORT_RANGE
from synclease.dashboard import record as rec
from synclease.dashboard.runner import DashboardOptions, run_dashboard
from synclease.entry import configure_logging, run_guarded
from synclease.errors import BadInputError


def options(project: str, port_hint: int | None) -> DashboardOptions:
    resolved = rec.resolve_project(project)
    rec.prepare_kittify(resolved)
    if port_hint is None:
        port_hint = rec.default_port_hint(resolved)
    elif port_hint not in DASHBOARD_PORT_RANGE:
        raise BadInputError(
            f"--port-hint {port_hint} is not in {DASHBOARD_PORT_RANGE.start}-{DASHBOARD_PORT_RANGE.stop - 1}"
        )
    return DashboardOptions(
        project=resolved, port_hint=port_hint, clock=SYSTEM_CLOCK, version=package_version()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m synclease.dashboard", description="Run one project dashboard (foreground)."
    )
    parser.add_argument("--project", required=True, help="the project directory")
    parser.add_argument("--port-hint", type=int, default=None, help="first port to try in 9237-9336")
    args = parser.parse_args(argv)
    configure_logging()
    return run_guarded(lambda: run_dashboard(options(args.project, args.port_hint)))


if __name__ == "__main__":
    raise SystemExit(main())
