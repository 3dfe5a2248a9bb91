"""OS adapter for process identity and holder locks. The one place with platform specifics.

A daemon holds an OS file lock (``filelock.FileLock``: ``flock`` on Unix) on its per-instance lock file
for its whole life; the kernel drops it when the process dies, so "lock free" proves "holder dead"
without trusting a PID.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psutil
from filelock import FileLock, Timeout

from synclease.lease.holder import ProcessFacts


def process_facts(pid: int) -> ProcessFacts:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return ProcessFacts(exists=False)  # exited: holds no lock, its PID not yet reusable
        return ProcessFacts(exists=True, start_time=proc.create_time())
    except psutil.NoSuchProcess:
        return ProcessFacts(exists=False)
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return ProcessFacts(exists=True, start_time=None)


def own_start_time() -> float:
    return psutil.Process(os.getpid()).create_time()


def pid_alive(pid: int) -> bool:
    try:
        return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


class HolderLock:
    """The per-instance lock a daemon holds for its whole life."""

    def __init__(self, path: Path) -> None:
        self._lock = FileLock(path, timeout=0, thread_local=False, mode=0o600)
        self.path = path

    def acquire(self) -> None:
        self._lock.acquire(timeout=0)

    def release(self) -> None:
        self._lock.release(force=True)


def probe_holder_lock(path: Path) -> bool | None:
    """True if nobody holds the lock at ``path`` (we took and dropped it), False if it is held,
    None if there is no such regular file to check (never creates one, never follows a link)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        return None
    lock = FileLock(path, timeout=0, thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return False
    except OSError:
        return None
    lock.release(force=True)
    return True
