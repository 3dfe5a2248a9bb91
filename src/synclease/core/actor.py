"""Who caused an event: the CLI process behind it (the ledger's ``by``). Kept apart from the rest of
the ledger so that the hot CLI paths can name themselves without importing it."""

from __future__ import annotations

import re

from synclease.core.codec import MAX_PID, as_int
from synclease.core.record import record

MAX_COMMAND_CHARS = 48
#: ``by.command``: a few lowercase words naming a CLI command (``sync start``), never argv or a value.
COMMAND_RE = re.compile(r"\A[a-z][a-z0-9-]*(?: [a-z0-9-]+){0,3}\Z")


@record
class Actor:
    """The CLI process behind an event (``by``): its pid and a short command name, never argv."""

    pid: int
    command: str

    def __post_init__(self) -> None:
        if as_int(self.pid, 1, MAX_PID) is None:
            raise ValueError("ledger event: bad by.pid")
        if (
            not (isinstance(self.command, str) and COMMAND_RE.match(self.command))
            or len(self.command) > MAX_COMMAND_CHARS
        ):
            raise ValueError("ledger event: bad by.command")
