"""Direct dispatch: a command line made only of a command's words and its switches runs without typer
(ADR 0021).

Building typer's command tree costs more than most commands do: importing typer is ~32 ms here, and
typer 0.25 and later load pydantic (~65 ms more) to coerce any parameter that is not a flag, its own
completion options among them. Scripts and host CLIs run ``auth doctor --json``, ``sync start --json``
and ``sync status --json`` often; those lines, and every other line that names a command below and
then only switches of that command, each at most once, call the command's ``run`` with one keyword per
switch. Every other line goes to typer, which owns help, usage errors, options with values and shell
completion: ``--help``, ``--json=1``, an unknown or repeated flag, an argument, ``--``.

The switches are declared here once. ``commands.py`` builds typer's options from the same
declarations, and ``tests/test_direct.py`` proves that both ways make the same call for every
combination of switches.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import cast

from synclease.core.record import record


@record
class Switch:
    """A flag that is off unless given: its spelling, the keyword of the command's ``run`` it sets, and
    its help line."""

    flag: str
    keyword: str
    help: str


@record
class Direct:
    """A command that runs directly when given only its ``switches``: the words that name it and the
    module whose ``run(**keywords) -> int`` it is."""

    words: tuple[str, str]
    module: str
    switches: tuple[Switch, ...]


JSON = Switch("--json", "as_json", "Print exactly one JSON document on stdout.")
RESET = Switch("--reset", "reset", "Clean safe_auto daemons and stale leases.")
FORCE = Switch("--force", "force", "With --reset: also clean operator_required daemons.")
FORCE_SPAWN = Switch(
    "--force-spawn", "force_spawn", "Spawn even after repeated failed starts (the respawn backoff)."
)
REQUEUE = Switch("--requeue", "requeue", "Move every dead letter back into the queue and wake the daemon.")

#: typer's completion protocol: the shell calls us back with this set; completion is typer's.
COMPLETE_VAR = "_SYNCLEASE_COMPLETE"

COMMANDS: tuple[Direct, ...] = (
    Direct(("auth", "doctor"), "synclease.cli.auth_doctor", (JSON, RESET, FORCE)),
    Direct(("auth", "status"), "synclease.cli.auth_status", (JSON,)),
    Direct(("auth", "logout"), "synclease.cli.auth_logout", (JSON,)),
    Direct(("sync", "start"), "synclease.cli.sync_start", (JSON, FORCE_SPAWN)),
    Direct(("sync", "status"), "synclease.cli.sync_status", (JSON,)),
    Direct(("sync", "stop"), "synclease.cli.sync_stop", (JSON,)),
    Direct(("sync", "dead-letter"), "synclease.cli.sync_dead_letter", (JSON, REQUEUE)),
)


def keywords(command: Direct, given: Sequence[str]) -> dict[str, bool] | None:
    """The keywords ``given`` (the words after the command's) set, or None unless they are distinct
    switches of ``command``."""
    flags = {switch.flag for switch in command.switches}
    if len(set(given)) != len(given) or not flags.issuperset(given):
        return None
    return {switch.keyword: switch.flag in given for switch in command.switches}


def call(args: Sequence[str], environ: Mapping[str, str]) -> Callable[[], int] | None:
    """The command ``args`` (the command line without the program name) runs directly, or None when it
    is typer's to read."""
    if COMPLETE_VAR in environ:
        return None
    for command in COMMANDS:
        count = len(command.words)
        if tuple(args[:count]) != command.words:
            continue
        chosen = keywords(command, args[count:])
        if chosen is None:
            return None
        return lambda: _run(command.module, chosen)
    return None


def _run(module: str, chosen: dict[str, bool]) -> int:
    __import__(module)  # not importlib.import_module: importing importlib costs every start
    run = cast(Callable[..., int], sys.modules[module].run)
    try:
        return run(**chosen)
    except EOFError:  # end of input at a prompt is an interrupt, as click makes it on typer's lines
        raise KeyboardInterrupt from None
