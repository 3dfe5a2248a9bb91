"""What Linux's ``/proc`` says of a PID, without psutil (its import alone costs ~9 ms of every CLI run):
exists, start (clock ticks since boot, and the epoch psutil would derive from them), effective uid,
which socket inodes its own descriptor table holds, and the PID here of a process that names itself by
another PID in its own namespace (``NSpid`` in ``/proc/<pid>/status``: ours first, its own last).

``create_time`` is computed exactly as psutil computes it (``starttime / SC_CLK_TCK + btime``), so a
start recorded by either reads the same.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Collection, Iterator

from synclease.core.identity import ProcessFacts, StartStamp

PROC = "/proc"
_STAT_BYTES = 4096
_STATUS_BYTES = 16384


@functools.cache
def available() -> bool:
    """This is Linux with a readable ``/proc`` (else the psutil path serves)."""
    return os.path.isfile(f"{PROC}/self/stat") and boot_time() is not None


@functools.cache
def boot_id() -> str | None:
    """This boot's id (Linux), else None."""
    try:
        with open(f"{PROC}/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read(64).strip() or None
    except OSError:
        return None


@functools.cache
def boot_time() -> float | None:
    """The boot's wall-clock epoch (``btime`` of ``/proc/stat``), as psutil reads it."""
    try:
        with open(f"{PROC}/stat", "rb") as handle:
            for line in handle:
                if line.startswith(b"btime"):
                    return float(line.split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return None


@functools.cache
def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), None if unreadable."""
    with open(f"{PROC}/{pid}/stat", "rb") as handle:
        raw = handle.read(_STAT_BYTES)
    fields = raw[raw.rfind(b")") + 2 :].split()
    return fields if len(fields) > 19 else None


def start_ticks(pid: int) -> int | None:
    """The process's start in clock ticks since boot (field 22 of ``/proc/<pid>/stat``), else None."""
    try:
        fields = _stat_fields(pid)
        return None if fields is None else int(fields[19])
    except (OSError, ValueError):
        return None


def _effective_uid(pid: int) -> int | None:
    try:
        with open(f"{PROC}/{pid}/status", "rb") as handle:
            for line in handle.read(_STATUS_BYTES).splitlines():
                if line.startswith(b"Uid:"):
                    return int(line.split()[2])
    except (OSError, IndexError, ValueError):
        return None
    return None


def facts(pid: int) -> ProcessFacts:
    """Exists (a zombie does not), start, uid: the same facts psutil gives, from ``/proc`` only."""
    if pid <= 0:
        return ProcessFacts(exists=False)
    try:
        fields = _stat_fields(pid)
    except FileNotFoundError:
        return ProcessFacts(exists=False)
    except OSError:
        return ProcessFacts(exists=True, start_time=None)
    if fields is None:
        return ProcessFacts(exists=True, start_time=None)
    if fields[0] in (b"Z", b"X"):
        return ProcessFacts(exists=False)
    bt = boot_time()
    try:
        ticks = int(fields[19])
    except ValueError:
        return ProcessFacts(exists=True, start_time=None)
    if bt is None:
        return ProcessFacts(exists=True, start_time=None)
    created = float(ticks) / _clock_ticks() + bt
    return ProcessFacts(True, created, ticks, boot_id(), _effective_uid(pid))


def own_rss_bytes() -> int | None:
    """This process's resident set size (``/proc/self/statm``, resident pages), None if unreadable."""
    try:
        with open(f"{PROC}/self/statm", "rb") as handle:
            return int(handle.read(256).split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return None


def _fd_socket_inodes(pid: int) -> Iterator[int] | None:
    """The socket inodes in ``pid``'s own descriptor table, lowest descriptor first and read lazily;
    empty when it has gone, None when we may not look (another user's process)."""
    base = f"{PROC}/{pid}/fd"
    try:
        names = os.listdir(base)
    except (FileNotFoundError, ProcessLookupError):
        return iter(())
    except OSError:
        return None
    return _read_socket_inodes(base, sorted(names, key=lambda n: int(n) if n.isdigit() else 0))


def _read_socket_inodes(base: str, names: list[str]) -> Iterator[int]:
    from synclease.core.sock_diag import socket_inode  # off the reuse path (``ensure`` needs no sockets)

    for name in names:
        try:
            inode = socket_inode(os.readlink(f"{base}/{name}"))
        except OSError:  # closed meanwhile
            continue
        if inode is not None:
            yield inode


def socket_inodes(pid: int) -> frozenset[int] | None:
    """The socket inodes in ``pid``'s own descriptor table; empty when it has gone, None when we may
    not look (another user's process)."""
    found = _fd_socket_inodes(pid)
    return None if found is None else frozenset(found)


def holds_sockets(pid: int, inodes: Collection[int]) -> bool | None:
    """Whether ``pid``'s own descriptor table holds every socket of ``inodes`` (None: we may not look).
    Stops reading at the last one found: a daemon's listening socket is among its first descriptors."""
    found = _fd_socket_inodes(pid)
    if found is None:
        return None
    missing = set(inodes)
    for inode in found:
        missing.discard(inode)
        if not missing:
            return True
    return False


def socket_owners(inodes: Collection[int]) -> tuple[dict[int, set[int]], bool]:
    """The full process walk: inode -> every PID whose descriptor table holds it, and whether every
    process could be read (False: some were another user's, so an inode's holders may be incomplete).
    Costs one ``readlink`` per descriptor of every process: run it only when nothing else proves."""
    wanted = set(inodes)
    owners: dict[int, set[int]] = {inode: set() for inode in wanted}
    complete = True
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        held = socket_inodes(int(entry.name))
        if held is None:
            complete = False
            continue
        for inode in held & wanted:
            owners[inode].add(int(entry.name))
    return owners, complete


# --- a PID as seen from here (PID namespaces, ADR 0017) ---------------------------------------------


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
