"""``synclease sync run [--replace]``: the daemon in the foreground."""

from __future__ import annotations

from synclease.daemons.sync.main import options_from_env, run_daemon


def run(replace: bool, managed: bool, instance_id: str | None) -> int:
    return run_daemon(options_from_env(replace, managed, instance_id))
