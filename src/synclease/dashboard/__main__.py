"""``python -m synclease.dashboard --project DIR [--port-hint N]``: the detached dashboard process.

What ``synclease dashboard`` spawns. Imports neither typer nor rich, to keep an idle dashboard small.
"""

from __future__ import annotations

import argparse
import logging
import sys

from synclease import package_version
from synclease.clock import SYSTEM_CLOCK
from synclease.constants import DASHBOARD_PORT_RANGE
from synclease.dashboard import record as rec
from synclease.dashboard.runner import DashboardOptions, run_dashboard
from synclease.errors import EXIT_INTERRUPTED, BadInputError, SyncleaseError

LOG_FORMAT = "%(asctime)s %(levelname)s pid=%(process)d %(message)s"


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("synclease")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


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
    _configure_logging()
    try:
        return run_dashboard(options(args.project, args.port_hint))
    except SyncleaseError as exc:
        sys.stderr.write(f"synclease: error: {exc.one_line()}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
