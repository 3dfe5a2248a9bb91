"""The real escalation operations (:class:`~synclease.core.escalate.Ops`): the polite HTTP step,
the identity re-check, the signal through :func:`synclease.adapters.process.signaller`, and waiting
for the process to be gone; and :class:`InParallel`, a wave's steps for many targets at once."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from synclease.adapters import http_client, process
from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.core.clock import Clock, poll
from synclease.core.constants import RETIRE_REQUEST_TIMEOUT_SECONDS
from synclease.core.escalate import CleanupPath, Ops, Target
from synclease.core.identity import is_gone

POLL_SECONDS = 0.02
RETIRE_PATH = "/api/retire"


def post_retire(port: int, token: str, body: Mapping[str, object] | None, path: str = RETIRE_PATH) -> bool:
    """The polite step, the one way it is asked: ``POST path`` with the daemon's token and ``body``
    (why, who asks), within :data:`RETIRE_REQUEST_TIMEOUT_SECONDS`; True if the daemon accepted."""
    return http_client.post(port, path, token, RETIRE_REQUEST_TIMEOUT_SECONDS, body).ok


#: The polite requests of a wave go out on at most this many threads at once.
MAX_PARALLEL_REQUESTS = 32


def process_gone(target: Target) -> bool:
    """Gone = no such process, a zombie, or the PID now belongs to a process with another start time."""
    return is_gone(target.start_time, process.facts(target.pid))


def not_ours(pid: int) -> bool:
    """The process runs under another effective uid (root included, when we are not root)."""
    uid = process.facts(pid).uid
    return uid is not None and uid != os.geteuid()


def port_closed_by(pid: int, port: int) -> bool:
    return process.listens_on(pid, port) is False


class RealOps:
    """The sync family's ladder: the polite step is ``POST /api/retire`` with the lease's token."""

    retire_path = RETIRE_PATH

    def __init__(
        self,
        clock: Clock = SYSTEM_CLOCK,
        retire_body: Mapping[str, object] | Callable[[Target], Mapping[str, object]] | None = None,
    ) -> None:
        """``retire_body``: what the polite request says (why, who asks), or how to say it per target."""
        self.clock = clock
        self.retire_body = retire_body

    def retire(self, target: Target) -> bool:
        if target.token is None:
            return False
        body = self.retire_body(target) if callable(self.retire_body) else self.retire_body
        return post_retire(target.port, target.token, body, self.retire_path)

    def veto(self, target: Target, step: CleanupPath) -> str | None:
        """Never a process of another user: as root, only root's own daemons are touched."""
        return "not_ours" if not_ours(target.pid) else None

    def still_same(self, target: Target) -> bool:
        if process_gone(target) or not_ours(target.pid):
            return False
        return process.listens_on(target.pid, target.port) is True

    def signal(self, target: Target, step: CleanupPath) -> bool:
        return process.signaller().send(target.pid, step.signal_name, lambda: self.still_same(target))

    def wait_gone(self, target: Target, timeout: float) -> bool:
        found = poll(self.clock, lambda: True if process_gone(target) else None, timeout, POLL_SECONDS)
        return found is not None


class ShutdownOps(RealOps):
    """The dashboard family's ladder: the polite step is ``POST /api/shutdown`` with the record's token."""

    retire_path = "/api/shutdown"


class InParallel:
    """A wave's steps (:class:`~synclease.core.escalate.Together`) over any escalation ``Ops``: the
    polite requests all at once (a bounded pool of threads: each is a short HTTP request), and one
    shared deadline for everyone to be gone, polled through the clock."""

    def __init__(self, ops: Ops, clock: Clock = SYSTEM_CLOCK, interval: float = POLL_SECONDS) -> None:
        self.ops, self.clock, self.interval = ops, clock, interval

    def retire_all(self, targets: Sequence[Target]) -> list[bool]:
        if len(targets) <= 1:
            return [self.ops.retire(target) for target in targets]
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_REQUESTS, len(targets))) as pool:
            return list(pool.map(self.ops.retire, targets))

    def wait_all_gone(self, targets: Sequence[Target], timeout: float) -> list[bool]:
        gone = [False] * len(targets)

        def everyone() -> bool | None:
            for i, target in enumerate(targets):
                gone[i] = gone[i] or self.ops.wait_gone(target, 0.0)  # one look, no wait
            return True if all(gone) else None

        poll(self.clock, everyone, timeout, self.interval)
        return gone
