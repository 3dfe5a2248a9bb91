"""Entry point: choose how the command line is read (directly, or by typer's tree) and hand the run to
the one error boundary. Nothing else."""

from __future__ import annotations

import os
import sys

from synclease.adapters.boundary import guarded
from synclease.cli import direct


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    run = direct.call(args, os.environ)
    if run is not None:
        return guarded(run)

    def by_tree() -> int:
        from synclease.cli import tree  # typer: only for the lines it must read

        return tree.dispatch(args)

    return guarded(by_tree)
