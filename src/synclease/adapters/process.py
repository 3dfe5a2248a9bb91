"""The one process-identity interface: what the OS says of a PID, which PID listens on a port, and
how to signal a process so that the signal reaches the process we checked and no other.

The platform variant is chosen once (:func:`processes`), the way ``filelock`` picks its lock class:
with ``pidfd`` (Linux) a signal goes through a descriptor opened *before* the identity re-check, so
the PID cannot be reused between check and kill; without it (other platforms, or the ``no_pidfd``
failpoint that lets CI exercise this variant) the re-check and ``os.kill`` run back to back. The
judgements ("same process?", "gone?") are pure, in :mod:`synclease.core.identity`.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable, Collection, Mapping
from typing import Any

import psutil

from synclease.adapters.environment import failpoint
from synclease.adapters.proc_view import boot_id, start_ticks
from synclease.core.fleet import Listener
from synclease.core.identity import ProcessFacts, StartStamp

#: Listening addresses a connection to 127.0.0.1 can reach, best first: a specific loopback bind wins
#: over a wildcard one on the same port (that is what the kernel routes to).
REACHABLE_ADDRESSES: Mapping[str, int] = {"127.0.0.1": 0, "::ffff:127.0.0.1": 0, "0.0.0.0": 1, "::": 1}


# --- what the OS says of one PID ----------------------------------------------------------------


def facts(pid: int) -> ProcessFacts:
    """Exists (a zombie does not: it holds no lock and its PID is not yet reusable), start, uid."""
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


def own_start() -> StartStamp:
    """This process's start, as its own lease and self-report record it."""
    found = facts(os.getpid())
    assert found.start is not None
    return found.start


def own_start_time() -> float:
    return own_start().epoch


def own_rss_mb() -> float | None:
    """This process's resident memory in MiB, or None when it cannot be read."""
    try:
        return float(psutil.Process(os.getpid()).memory_info().rss) / (1024 * 1024)
    except (psutil.Error, OSError):
        return None


def listens_on(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` itself holds a TCP listener on ``port`` (None: not allowed to look).

    Reads only that process's sockets, not the whole system table, so re-checking one target before
    each signal stays cheap even when many targets are cleaned in parallel."""
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except (psutil.AccessDenied, OSError):
        return None
    return any(_listening_on(c, range(port, port + 1)) is not None for c in conns)


# --- which PID listens on which port ------------------------------------------------------------


def _with_facts(listener: Listener, cache: dict[int, ProcessFacts]) -> Listener:
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


def _listening_on(conn: Any, ports: range) -> tuple[int, int] | None:
    """``(port, address rank)`` of a LISTEN socket on a reachable address in ``ports``, else None."""
    if conn.status != psutil.CONN_LISTEN or not conn.laddr:
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
        found = _listening_on(conn, ports)
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


def read_listener_table(ports: range) -> tuple[dict[int, Listener], str | None]:
    """Port → :class:`Listener` from one read of the OS table, and an error tag if it was unreadable.

    ``psutil.AccessDenied`` on the whole table (macOS without root) gives an empty table and
    ``"access_denied"``; a socket of another user's process has PID None; a process whose start time
    cannot be read has ``pid_start_time`` None.
    """
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return {}, "access_denied"
    except (psutil.Error, OSError) as exc:
        return {}, f"unreadable:{type(exc).__name__}"
    table = build_listener_table(connections, ports)
    cache: dict[int, ProcessFacts] = {}
    return {port: _with_facts(entry, cache) for port, entry in table.items()}, None


def listener_table(ports: range) -> dict[int, Listener]:
    """Port → :class:`Listener` for every TCP LISTEN socket reachable on 127.0.0.1 in ``ports``."""
    return read_listener_table(ports)[0]


def verify_listener(port: int, candidates: Collection[int]) -> Listener:
    """Fallback when the whole table is unreadable: which of the claimed PIDs (from a self-report or a
    lease) the kernel shows listening on ``port`` in its own connection list. Exactly one → that PID."""
    confirmed = [pid for pid in sorted(set(candidates)) if listens_on(pid, port)]
    if len(confirmed) != 1:
        return Listener(port)
    return _with_facts(Listener(port, confirmed[0]), {})


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
