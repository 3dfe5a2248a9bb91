"""What ``protocol check`` reads from outside a daemon: its lease file (with the entry's inode, to see
atomic replacement) and the OS table of sockets listening on its port (with their addresses)."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.core.clock import Clock
from synclease.core.conformance import LeaseSample, Socket

__all__ = ["lease_sample", "listening_sockets", "path_exists"]


def lease_sample(root: Path, family: str, instance_id: str, clock: Clock) -> LeaseSample:
    """One defensive read of ``<root>/leases/<family>/<instance_id>.json`` and its inode."""
    store = LeaseStore(DaemonRoot(root), family)
    path = store.root.lease_path(instance_id, family)
    at = clock.now()
    try:
        inode: int | None = os.lstat(path).st_ino
    except OSError:
        inode = None
    entry = store.read_path(path)
    return LeaseSample(at, entry.lease, entry.problem, inode)


def path_exists(path: Path) -> bool:
    return os.path.lexists(path)


def listening_sockets(port: int) -> tuple[tuple[Socket, ...], str | None]:
    """Every TCP socket in LISTEN state on ``port``, any address, with its PID (None: not ours to see)."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return (), "access_denied"
    except (psutil.Error, OSError) as exc:
        return (), f"unreadable:{type(exc).__name__}"
    found = [
        Socket(str(conn.laddr[0]), conn.pid)
        for conn in connections
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr[1] == port
    ]
    return tuple(found), None
