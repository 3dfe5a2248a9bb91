"""``python -m synclease.daemon [--managed] [--instance-id ID] [--replace]``: what ``ensure`` spawns."""

from __future__ import annotations

import argparse
import sys

from synclease.daemon.main import options_from_env, run_daemon
from synclease.errors import EXIT_INTERRUPTED, SyncleaseError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synclease.daemon", description="Run one sync daemon.")
    parser.add_argument("--managed", action="store_true", help="spawned by ensure, which records it")
    parser.add_argument("--instance-id", default=None)
    parser.add_argument("--replace", action="store_true")
    args = parser.parse_args(argv)
    try:
        return run_daemon(options_from_env(args.replace, args.managed, args.instance_id))
    except SyncleaseError as exc:
        sys.stderr.write(f"synclease: error: {exc.one_line()}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
