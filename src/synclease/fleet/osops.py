"""The real escalation operations: HTTP retire, identity re-check, pidfd signals, waiting for exit."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil

from synclease import httpc
from synclease.fleet.escalate import Target
from synclease.lease.holder import same_start

POLL_SECONDS = 0.02


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
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in conns)


def process_gone(pid: int, start_time: float) -> bool:
    """Gone = no such process, a zombie, or the PID now belongs to a process with another start time."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return True
        return not same_start(start_time, proc.create_time())
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False


def port_closed_by(pid: int, port: int) -> bool:
    return listens_on(pid, port) is False


class RealOps:
    def __init__(self, http_timeout: float = 1.0) -> None:
        self.http_timeout = http_timeout

    def retire(self, target: Target) -> bool:
        if target.token is None:
            return False
        return httpc.post(target.port, "/api/retire", target.token, timeout=self.http_timeout).ok

    def still_same(self, target: Target) -> bool:
        if process_gone(target.pid, target.start_time):
            return False
        return listens_on(target.pid, target.port) is True

    def signal(self, target: Target, signum: int) -> bool:
        """Signal through a pidfd opened *before* the identity re-check, so the PID cannot be reused
        between check and kill (Linux); elsewhere re-check and ``os.kill`` back to back."""
        pidfd_open = getattr(os, "pidfd_open", None)
        send = getattr(signal, "pidfd_send_signal", None)
        if pidfd_open is not None and send is not None:
            try:
                fd = pidfd_open(target.pid)
            except OSError:
                return False
            try:
                if not self.still_same(target):
                    return False
                send(fd, signum)
                return True
            except OSError:
                return False
            finally:
                os.close(fd)
        if not self.still_same(target):
            return False
        try:
            os.kill(target.pid, signum)
        except OSError:
            return False
        return True

    def wait_gone(self, target: Target, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if process_gone(target.pid, target.start_time):
                return True
            if time.monotonic() >= deadline:
                return False
            with contextlib.suppress(Exception):
                time.sleep(POLL_SECONDS)
