"""The one process-identity interface: what the OS says of a PID, which PID listens on a port, and
how to signal a process so that the signal reaches the process we checked and no other.

Which PID listens (ADR 0014): on Linux the kernel's own table (:mod:`.kernel_table`: sock_diag, else
``/proc/net/tcp{,6}``) gives each listening socket's port, uid and inode, and a PID is proven from
its own descriptor table (:mod:`.listeners`); without that table (macOS, or the ``no_kernel_table``
failpoint) each claimed PID's own connections are asked (psutil). psutil is imported only off
Linux's fast path.

The signalling variant is chosen once (:func:`signaller`), the way ``filelock`` picks its lock class:
with ``pidfd`` (Linux) a signal goes through a descriptor opened *before* the identity re-check, so
the PID cannot be reused between check and kill; without it (other platforms, or the ``no_pidfd``
failpoint that lets CI exercise this variant) the re-check and ``os.kill`` run back to back. The
judgements ("same process?", "gone?") are pure, in :mod:`synclease.core.identity`.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable, Collection
from typing import Any

from synclease.adapters import kernel_table, procfs
from synclease.adapters.environment import failpoint
from synclease.core.fleet import Listener
from synclease.core.identity import ProcessFacts, StartStamp
from synclease.core.sock_diag import REACHABLE_ADDRESSES

__all__ = ["REACHABLE_ADDRESSES"]


# --- what the OS says of one PID ----------------------------------------------------------------


def boot_id() -> str | None:
    """This boot's id (Linux), else None."""
    return procfs.boot_id()


def start_ticks(pid: int) -> int | None:
    """The process's start in clock ticks since boot (Linux ``/proc/<pid>/stat`` field 22), else None.

    Unlike a wall-clock start time it does not move when the clock is stepped."""
    return procfs.start_ticks(pid)


def _psutil_facts(pid: int) -> ProcessFacts:
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return ProcessFacts(exists=False)
        created = proc.create_time()
        ticks = start_ticks(pid)
        try:
            uid: int | None = proc.uids().effective
        except (psutil.AccessDenied, AttributeError):
            uid = None
        return ProcessFacts(True, created, ticks, boot_id() if ticks is not None else None, uid)
    except psutil.NoSuchProcess:
        return ProcessFacts(exists=False)
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return ProcessFacts(exists=True, start_time=None)


def facts(pid: int) -> ProcessFacts:
    """Exists (a zombie does not: it holds no lock and its PID is not yet reusable), start, uid.

    From ``/proc`` on Linux (the same figures psutil derives), else from psutil."""
    return procfs.facts(pid) if procfs.available() else _psutil_facts(pid)


def own_start() -> StartStamp:
    """This process's start, as its own lease and self-report record it."""
    found = facts(os.getpid())
    assert found.start is not None
    return found.start


def own_start_time() -> float:
    return own_start().epoch


def own_rss_mb() -> float | None:
    """This process's resident memory in MiB, or None when it cannot be read (``/proc`` on Linux: a
    daemon need not load psutil for it)."""
    if procfs.available():
        rss = procfs.own_rss_bytes()
        return None if rss is None else float(rss) / (1024 * 1024)
    import psutil

    try:
        return float(psutil.Process(os.getpid()).memory_info().rss) / (1024 * 1024)
    except (psutil.Error, OSError):
        return None


def kernel_table_available() -> bool:
    """Linux's kernel listener table serves (not forced off by the ``no_kernel_table`` failpoint)."""
    return procfs.available() and not failpoint("no_kernel_table")


def _psutil_listens_on(pid: int, port: int) -> bool | None:
    import psutil

    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except (psutil.AccessDenied, OSError):
        return None
    return any(listening_on(c, range(port, port + 1)) is not None for c in conns)


def listens_on(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` itself holds a TCP listener on ``port`` reachable from 127.0.0.1 (None:
    not allowed to look).

    Reads only that process's descriptors (and, on Linux, the kernel's listening sockets), not every
    process's, so re-checking one target before each signal stays cheap."""
    if kernel_table_available():
        try:
            sockets, _source = kernel_table.read_listeners()
        except OSError:
            return _psutil_listens_on(pid, port)
        held = procfs.socket_inodes(pid)
        on_port = {s.inode for s in sockets if s.port == port and s.rank is not None}
        if held is None:
            return None
        return bool(on_port & held)
    return _psutil_listens_on(pid, port)


# --- the psutil table (no kernel table: the one-off walk) ----------------------------------------


def listening_on(conn: Any, ports: range) -> tuple[int, int] | None:
    """``(port, address rank)`` of a psutil LISTEN connection on a reachable address in ``ports``."""
    if conn.status != "LISTEN" or not conn.laddr:
        return None
    ip, port = conn.laddr[0], conn.laddr[1]
    rank = REACHABLE_ADDRESSES.get(ip)
    if rank is None or port not in ports:
        return None
    return port, rank


def build_listener_table(connections: Collection[Any], ports: range) -> dict[int, Listener]:
    """The best-ranked listener per port (start times aside). Two different PIDs on the same port at
    the same rank (``SO_REUSEPORT``, an inherited socket) are ambiguous, so that port's PID is unknown.
    """
    best: dict[int, tuple[int, set[int | None]]] = {}
    for conn in connections:
        found = listening_on(conn, ports)
        if found is None:
            continue
        port, rank = found
        current = best.get(port)
        if current is None or rank < current[0]:
            best[port] = (rank, {conn.pid})
        elif rank == current[0]:
            current[1].add(conn.pid)
    table: dict[int, Listener] = {}
    for port, (_rank, pids) in best.items():
        pid = next(iter(pids)) if len(pids) == 1 else None
        table[port] = Listener(port, pid, None)
    return table


def psutil_listener_table(ports: range) -> tuple[dict[int, Listener], str | None]:
    """Port → :class:`Listener` (PID only) from ``psutil.net_connections``: every process's
    descriptors. ``AccessDenied`` (macOS without root) gives an empty table and ``"access_denied"``."""
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return {}, "access_denied"
    except (psutil.Error, OSError) as exc:
        return {}, f"unreadable:{type(exc).__name__}"
    return build_listener_table(connections, ports), None


def with_facts(listener: Listener, cache: dict[int, ProcessFacts]) -> Listener:
    """The listener with its process's start and uid filled in (facts read once per PID)."""
    pid = listener.pid
    if pid is None:
        return listener
    if pid not in cache:
        cache[pid] = facts(pid)
    found = cache[pid]
    if not found.exists:
        return Listener(listener.port, pid)
    return Listener(listener.port, pid, found.start_time, found.start_ticks, found.boot_id, found.uid)


# --- signalling the process we checked ----------------------------------------------------------


class Signaller:
    """Re-check, then ``os.kill``, back to back: the portable variant."""

    name = "recheck"

    def send(self, pid: int, signal_name: str, still_same: Callable[[], bool]) -> bool:
        """Send ``signal_name`` to ``pid`` only if ``still_same()`` holds right before; False otherwise."""
        if not still_same():
            return False
        try:
            os.kill(pid, signal.Signals[signal_name])
        except OSError:
            return False
        return True


class PidfdSignaller(Signaller):
    """Open a pidfd first, re-check, then signal through the descriptor (Linux 5.3+)."""

    name = "pidfd"

    def send(self, pid: int, signal_name: str, still_same: Callable[[], bool]) -> bool:
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return False
        try:
            if not still_same():
                return False
            signal.pidfd_send_signal(fd, signal.Signals[signal_name])
            return True
        except OSError:
            return False
        finally:
            os.close(fd)


@functools.cache
def signaller() -> Signaller:
    """The variant for this platform, chosen once per process (``no_pidfd`` forces the portable one)."""
    has_pidfd = hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")
    return PidfdSignaller() if has_pidfd and not failpoint("no_pidfd") else Signaller()
