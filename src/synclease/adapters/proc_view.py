"""What ``/proc`` says of a PID as seen from this process, without psutil (Linux; elsewhere: unknown).

Light enough for the reuse path (``ensure`` imports no psutil): a process's start in clock ticks, this
boot's id, and the PID here of a process that names itself by another PID in its own namespace
(``NSpid`` in ``/proc/<pid>/status``: the PID in each namespace, ours first, its own last).
"""

from __future__ import annotations

import functools
import os

from synclease.core.identity import StartStamp

PROC = "/proc"


@functools.cache
def boot_id() -> str | None:
    """This boot's id (Linux), else None."""
    try:
        with open(f"{PROC}/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read(64).strip() or None
    except OSError:
        return None


def start_ticks(pid: int) -> int | None:
    """The process's start in clock ticks since boot (Linux ``/proc/<pid>/stat`` field 22), else None.

    Unlike a wall-clock start time it does not move when the clock is stepped."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as handle:
            raw = handle.read(4096)
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def same_process_here(pid: int, start: StartStamp) -> bool | None:
    """Is ``pid`` here the process that started at ``start``? None when this cannot be read exactly
    (no ``/proc``, or ``start`` lacks kernel ticks or a boot id)."""
    if start.ticks is None or start.boot_id is None or boot_id() is None:
        return None
    if start.boot_id != boot_id():
        return False
    return start_ticks(pid) == start.ticks


def _innermost_pid(pid: int) -> int | None:
    try:
        with open(f"{PROC}/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle.read(8192).splitlines():
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def pid_here(own_pid: int, start: StartStamp) -> int | None:
    """The PID here of the process that calls itself ``own_pid`` in its PID namespace and started at
    ``start`` (same kernel ticks, same boot), or None when no process visible here is that one."""
    if start.ticks is None or start.boot_id is None or start.boot_id != boot_id():
        return None
    try:
        names = os.listdir(PROC)
    except OSError:
        return None
    for name in names:
        if name.isdigit() and start_ticks(int(name)) == start.ticks and _innermost_pid(int(name)) == own_pid:
            return int(name)
    return None
