"""``python -m synclease.daemons.sync [--managed] [--instance-id ID] [--replace]``: what ``ensure`` spawns."""

from __future__ import annotations

import argparse

from synclease.adapters.boundary import guarded
from synclease.daemons.sync.main import options_from_env, run_daemon


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m synclease.daemons.sync", description="Run one sync daemon."
    )
    parser.add_argument("--managed", action="store_true", help="spawned by ensure, which records it")
    parser.add_argument("--instance-id", default=None)
    parser.add_argument("--replace", action="store_true")
    args = parser.parse_args(argv)
    return guarded(lambda: run_daemon(options_from_env(args.replace, args.managed, args.instance_id)))


if __name__ == "__main__":
    raise SystemExit(main())
