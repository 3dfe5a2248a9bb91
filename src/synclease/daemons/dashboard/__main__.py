"""``python -m synclease.daemons.dashboard --project DIR [--port-hint N]``: the detached dashboard process.

What ``synclease dashboard`` spawns. Imports neither typer nor rich, to keep an idle dashboard small.
"""

from __future__ import annotations

import argparse

from synclease.adapters import dashboard_store, environment
from synclease.adapters.boundary import guarded
from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.daemon_log import configure_logging
from synclease.core.constants import DASHBOARD_PORT_RANGE
from synclease.core.dashboard_record import default_port_hint, log_path
from synclease.core.errors import BadInputError
from synclease.daemons.dashboard.daemon import DashboardOptions, run_dashboard


def options(project: str, port_hint: int | None) -> DashboardOptions:
    resolved = dashboard_store.resolve_project(project)
    dashboard_store.prepare_kittify(resolved)
    if port_hint is None:
        port_hint = default_port_hint(resolved)
    elif port_hint not in DASHBOARD_PORT_RANGE:
        raise BadInputError(
            f"--port-hint {port_hint} is not in {DASHBOARD_PORT_RANGE.start}-{DASHBOARD_PORT_RANGE.stop - 1}"
        )
    return DashboardOptions(
        project=resolved, port_hint=port_hint, clock=SYSTEM_CLOCK, version=environment.package_version()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m synclease.daemons.dashboard", description="Run one project dashboard (foreground)."
    )
    parser.add_argument("--project", required=True, help="the project directory")
    parser.add_argument("--port-hint", type=int, default=None, help="first port to try in 9237-9336")
    args = parser.parse_args(argv)

    def run() -> int:
        opts = options(args.project, args.port_hint)
        configure_logging(log_path(opts.project))
        return run_dashboard(opts)

    configure_logging()
    return guarded(run)


if __name__ == "__main__":
    raise SystemExit(main())
