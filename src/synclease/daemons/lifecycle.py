"""The one lifecycle of both daemons: startup → loop → bounded shutdown.

* Signals are captured *before* startup (:func:`captured_signals`, a context manager that restores the
  previous handlers and wake-up descriptor afterwards), so a SIGTERM that arrives while the lease or
  record is being written is seen by the loop instead of leaving an orphan behind.
* Handlers only count the signal; ``signal.set_wakeup_fd`` wakes the loop, which asks the daemon what
  to do. The first signal is a reason to leave like any other (the sync daemon still drains work in
  flight); a second one shortens the drain to :data:`FORCED_DRAIN_SECONDS` but never skips the
  retirement steps.
* The exit code says how the daemon was stopped: :data:`~synclease.core.errors.EXIT_INTERRUPTED`
  (130) when a SIGINT (Ctrl-C) was among the signals, else 0. A SIGTERM is a request to retire (as
  ``sync stop`` or a reaper asks), and a retirement it asked for is done (0).
* Shutdown is bounded as a whole (:data:`SHUTDOWN_BOUND_SECONDS`): each step gets what is left.
* Every wait goes through the daemon's clock: the loop waits on its :class:`Waker` (a
  :class:`~synclease.core.clock.Waitable`) with ``clock.wait``, so a test clock drives the loop
  without sleeping. The loop has no timer tick of its own: it wakes when a step's wait is over or
  when something pokes the waker (a signal, a control request, the worker settling a batch).
"""

from __future__ import annotations

import abc
import contextlib
import logging
import select
import signal
import socket
import threading
import types
from collections.abc import Iterator

from synclease.adapters.http_server import ControlServer
from synclease.core.clock import Clock
from synclease.core.errors import EXIT_INTERRUPTED, EXIT_OK
from synclease.core.record import record

log = logging.getLogger("synclease.daemon")

#: After a second signal, work in flight gets at most this long before retirement goes ahead.
FORCED_DRAIN_SECONDS = 2.0
#: The whole shutdown (worker, records, port, lease, locks) finishes within this bound.
SHUTDOWN_BOUND_SECONDS = 15.0
SERVER_STOP_SECONDS = 2.0
#: A step that answers None waits "until poked": the clock waits on a finite bound, and this one is
#: long enough that only a poke ends it in practice.
UNTIL_POKED_SECONDS = 3600.0


@record
class Leave:
    """A step's answer: stop the loop and shut down for ``reason``."""

    reason: str


class Waker:
    """A socketpair the loop sleeps on; signals (via ``set_wakeup_fd``) and control requests poke it.

    It is a :class:`~synclease.core.clock.Waitable` (``is_set``: a poke is waiting; ``wait``), so the
    loop waits on it through the clock; :meth:`clear` drops the pokes seen so far."""

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        for sock in (self._read, self._write):
            sock.setblocking(False)

    @property
    def fileno(self) -> int:
        return self._write.fileno()

    def poke(self) -> None:
        with contextlib.suppress(OSError):
            self._write.send(b"x")

    def is_set(self) -> bool:
        readable, _, _ = select.select([self._read], [], [], 0)
        return bool(readable)

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until poked or ``timeout`` seconds (None: until poked); True if poked. The pokes stay
        until :meth:`clear`."""
        readable, _, _ = select.select([self._read], [], [], timeout)
        return bool(readable)

    def clear(self) -> None:
        with contextlib.suppress(OSError):
            while self._read.recv(4096):
                pass

    def close(self) -> None:
        self._read.close()
        self._write.close()


@contextlib.contextmanager
def captured_signals(daemon: Daemon, *, ignore_sigterm: bool = False) -> Iterator[None]:
    """Count SIGTERM/SIGINT on ``daemon`` and wake its loop, for the block; restore what was there."""

    def handler(signum: int, frame: types.FrameType | None) -> None:
        daemon.signals += 1
        daemon.interrupted = daemon.interrupted or signum == signal.SIGINT

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous_fd = signal.set_wakeup_fd(daemon.waker.fileno, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, signal.SIG_IGN if ignore_sigterm else handler)
    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(previous_fd)


class Daemon(abc.ABC):
    """A daemon is its three hooks; :meth:`run` is the lifecycle they share."""

    #: The ``ignore_sigterm`` failpoint: SIGTERM is ignored (SIGKILL still works).
    ignore_sigterm = False

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.waker = Waker()
        self.signals = 0
        #: A SIGINT (Ctrl-C) was among the signals: :meth:`run` exits 130 once retired.
        self.interrupted = False
        self.server: ControlServer | None = None
        self._server_thread: threading.Thread | None = None
        self._serving = False

    @abc.abstractmethod
    def startup(self) -> ControlServer:
        """Take what is ours, bind, write our records; return the bound (not yet serving) server."""

    @abc.abstractmethod
    def step(self) -> Leave | float | None:
        """One turn of the loop: :class:`Leave`, or how long to wait (None: until poked)."""

    @abc.abstractmethod
    def shutdown(self, reason: str, deadline: float) -> None:
        """Release what is ours by the monotonic ``deadline`` (use :meth:`stop_server` for the port)."""

    @abc.abstractmethod
    def on_serving(self) -> None:
        """Called once the control plane serves (e.g. start the worker, log the address)."""

    def run(self) -> int:
        """Startup, loop, shutdown; the shutdown runs whatever happened before it (then re-raises).
        Returns the exit code: 130 when a SIGINT stopped the daemon, else 0."""
        reason = "startup_failed"
        with captured_signals(self, ignore_sigterm=self.ignore_sigterm):
            try:
                self.server = self.startup()
                reason = "error"
                self._server_thread = threading.Thread(
                    target=self.server.serve_forever, name="control-plane", daemon=True
                )
                self._server_thread.start()
                self._serving = True
                self.on_serving()
                reason = self._loop()
            finally:
                self.shutdown(reason, self.clock.monotonic() + SHUTDOWN_BOUND_SECONDS)
                self.waker.close()
        return EXIT_INTERRUPTED if self.interrupted else EXIT_OK

    def _loop(self) -> str:
        forced_at: float | None = None
        while True:
            if self._server_thread is not None and not self._server_thread.is_alive():
                log.error("the control plane stopped serving; retiring instead of running deaf")
                return "error"
            outcome = self.step()
            if isinstance(outcome, Leave):
                return outcome.reason
            wait = UNTIL_POKED_SECONDS if outcome is None else outcome
            if self.signals >= 2:
                now = self.clock.monotonic()
                forced_at = now if forced_at is None else forced_at
                left = forced_at + FORCED_DRAIN_SECONDS - now
                if left <= 0:
                    log.warning("second signal: drain cut short after %.1fs", FORCED_DRAIN_SECONDS)
                    return "signal"
                wait = min(wait, left)  # wake at the forced deadline, not on a tick
            self.clock.wait(self.waker, wait)
            self.waker.clear()  # the step that follows reads every flag a poke announced

    def stop_server(self, deadline: float) -> None:
        """Close the port now: ask ``serve_forever`` to stop (one byte on the listener's own
        socketpair), wait for it through the clock (bounded), then close."""
        server = self.server
        if server is None:
            return
        if self._serving:
            server.request_stop()
            left = max(0.0, min(SERVER_STOP_SECONDS, deadline - self.clock.monotonic()))
            self.clock.wait(server.stopped, left)
        server.server_close()
