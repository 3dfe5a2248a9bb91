"""The accept loop of the control planes: bounded in connections, in handler threads and in time.

A local client may open a thousand connections and send nothing, drip one byte at a time, or send a
huge body; the daemon must still answer a new health request within a second and keep renewing its
lease. So:

* accepted connections wait in one selector, costing a descriptor and no thread, until their first
  bytes arrive; at most :data:`MAX_PENDING` wait at once (the oldest is closed to admit a new one), and
  each is closed when :data:`REQUEST_DEADLINE_SECONDS` pass without a request;
* a connection whose client hangs up before sending anything is closed right in the loop, never
  handed to a handler (a flood of closed connections drains at an accept and a close each);
* a connection with bytes to read goes to one of at most :data:`HANDLER_THREADS` handler threads,
  which must read the whole request within the same deadline (:class:`DeadlineReader`); when every
  thread is busy and :data:`MAX_QUEUED` requests wait, a new one is closed at once (shed, never queued
  forever). Handler threads are started when a request finds none idle and end after
  :data:`HANDLER_IDLE_SECONDS` without work, so an idle daemon holds no handler thread;
* an idle loop sleeps until a descriptor is ready (no timer tick): it wakes only for a connection, a
  pending connection's deadline, the end of an accept pause, or the stop request (its socketpair);
* when accepting fails for lack of descriptors (EMFILE), the loop pauses accepting briefly instead of
  spinning, and the connections it already holds keep being served.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import io
import logging
import resource
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger("synclease.http")

REQUEST_DEADLINE_SECONDS = 3.0
#: At most this many accepted connections wait for their first bytes (fewer under a low descriptor
#: limit: a quarter of it, so waiting connections never starve the daemon's own files of descriptors).
MAX_PENDING = 128
HANDLER_THREADS = 8
#: A handler thread with no request for this long ends (the next request starts one again).
HANDLER_IDLE_SECONDS = 5.0
MAX_QUEUED = 32
#: Deep enough that the kernel completes a new client's handshake even behind a thousand idle ones
#: (capped by the system's ``somaxconn``); the loop drains it quickly, closing the idlest.
LISTEN_BACKLOG = 4096
ACCEPT_PAUSE_SECONDS = 0.05
#: After refusing a request whose body was not read, read and drop at most this much for at most
#: this long before closing, so the client reads the refusal instead of a reset.
LINGER_BYTES = 256 * 1024
LINGER_SECONDS = 0.2


class DeadlineReader(io.RawIOBase):
    """A socket's read side in which every read is bounded by one deadline for the whole request."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request deadline passed")
        self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


def linger_close(sock: socket.socket) -> None:
    """Close after our response: stop sending, drain what the client still sends (bounded), close."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_SECONDS
        drained = 0
        while drained < LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                break
            drained += len(chunk)
    with contextlib.suppress(OSError):
        sock.close()


Serve = Callable[[socket.socket, float], None]


def _peek(conn: socket.socket) -> bytes | None:
    """The connection's first byte, left in place: ``b""`` when the client has already hung up (or
    reset), None when it has sent nothing yet."""
    try:
        return conn.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return None
    except OSError:
        return b""


class AcceptLoop:
    """``127.0.0.1:port``, serving each request with ``serve(connection, deadline)`` in a bounded pool."""

    def __init__(self, address: tuple[str, int], serve: Serve) -> None:
        self._serve = serve
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if sys.platform.startswith("linux"):
                # Only lets a restarted daemon take back its port from TIME_WAIT leftovers on Linux.
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind(address)
            self.socket.listen(LISTEN_BACKLOG)
        except BaseException:
            self.socket.close()
            raise
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self._pending: collections.OrderedDict[socket.socket, float] = collections.OrderedDict()
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self._max_pending = (
            MAX_PENDING if soft == resource.RLIM_INFINITY else max(8, min(MAX_PENDING, soft // 4))
        )
        self._jobs: collections.deque[tuple[socket.socket, float]] = collections.deque()
        #: Guards the jobs and the handler counts; handlers wait on it for work.
        self._work_ready = threading.Condition()
        self._idle_handlers = 0
        self._handlers = 0
        self._closing = False
        self._stop = threading.Event()
        self._done = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()

    # --- the loop ---------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.socket, selectors.EVENT_READ, "accept")
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        paused_until = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if paused_until and now >= paused_until:
                    selector.register(self.socket, selectors.EVENT_READ, "accept")
                    paused_until = 0.0
                for key, _ in selector.select(self._timeout(now, paused_until)):
                    if not self._event(selector, key) and not paused_until:
                        # Out of descriptors: stop accepting for a moment instead of spinning.
                        selector.unregister(self.socket)
                        paused_until = time.monotonic() + ACCEPT_PAUSE_SECONDS
                self._expire(selector, time.monotonic())
        finally:
            for sock in list(self._pending):
                self._drop(selector, sock)
            selector.close()
            self._done.set()

    def _timeout(self, now: float, paused_until: float) -> float | None:
        """Until the first pending connection's deadline or the end of an accept pause; else None
        (sleep until a descriptor is ready)."""
        wakes = [when for when in (next(iter(self._pending.values()), 0.0), paused_until) if when]
        return max(0.0, min(wakes) - now) if wakes else None

    def _event(self, selector: selectors.BaseSelector, key: selectors.SelectorKey) -> bool:
        """Handle one ready descriptor; False only when accepting ran out of descriptors. Whatever
        goes wrong with one connection never ends the loop."""
        try:
            if key.data == "accept":
                return self._accept(selector)
            if key.data == "wake":
                with contextlib.suppress(OSError):
                    self._wake_r.recv(4096)
            else:
                self._ready(selector, key.fileobj)  # type: ignore[arg-type]
        except (OSError, ValueError, KeyError):
            log.debug("control connection event failed", exc_info=True)
        return True

    def _accept(self, selector: selectors.BaseSelector) -> bool:
        """Accept what is waiting; False when out of descriptors (the caller pauses accepting)."""
        for _ in range(64):
            try:
                conn, _ = self.socket.accept()
            except BlockingIOError:
                return True
            except OSError as exc:
                return exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
            conn.setblocking(False)
            first = _peek(conn)
            if first == b"":
                # The client hung up before it was accepted (a flood of closed connections drains
                # here, at the cost of an accept and a close each, never a handler's turn).
                with contextlib.suppress(OSError):
                    conn.close()
                continue
            if first:
                # It already sent its request: serve it now rather than let newer idle ones evict it.
                self._dispatch(conn, time.monotonic() + REQUEST_DEADLINE_SECONDS)
                continue
            if len(self._pending) >= self._max_pending:
                oldest = next(iter(self._pending))
                self._drop(selector, oldest)
            self._pending[conn] = time.monotonic() + REQUEST_DEADLINE_SECONDS
            selector.register(conn, selectors.EVENT_READ, "conn")
        return True

    def _ready(self, selector: selectors.BaseSelector, conn: socket.socket) -> None:
        if conn not in self._pending:
            return  # dropped earlier in this same round (evicted to admit a newer one)
        if _peek(conn) == b"":
            self._drop(selector, conn)  # it hung up without a request: nothing to serve
            return
        deadline = self._pending.pop(conn)
        selector.unregister(conn)
        self._dispatch(conn, deadline)

    def _dispatch(self, conn: socket.socket, deadline: float) -> None:
        """Queue the request for a handler; start one when none is idle (up to the bound)."""
        with self._work_ready:
            if len(self._jobs) >= MAX_QUEUED or self._closing:
                with contextlib.suppress(OSError):
                    conn.close()
                return
            self._jobs.append((conn, deadline))
            if self._idle_handlers >= len(self._jobs):
                self._work_ready.notify()
                return
            if self._handlers < HANDLER_THREADS:
                self._handlers += 1
                threading.Thread(target=self._work, name=f"control-{self._handlers}", daemon=True).start()

    def _expire(self, selector: selectors.BaseSelector, now: float) -> None:
        while self._pending:
            sock, deadline = next(iter(self._pending.items()))
            if deadline > now:
                return
            self._drop(selector, sock)

    def _drop(self, selector: selectors.BaseSelector, sock: socket.socket) -> None:
        self._pending.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            selector.unregister(sock)
        with contextlib.suppress(OSError):
            sock.close()

    def _next_job(self) -> tuple[socket.socket, float] | None:
        """The next request, or None when this handler should end (idle too long, or closing)."""
        with self._work_ready:
            while not self._jobs and not self._closing:
                self._idle_handlers += 1
                woken = self._work_ready.wait(HANDLER_IDLE_SECONDS)
                self._idle_handlers -= 1
                if not woken and not self._jobs:
                    break
            if self._jobs and not self._closing:
                return self._jobs.popleft()
            self._handlers -= 1
            return None

    def _work(self) -> None:
        while (job := self._next_job()) is not None:
            conn, deadline = job
            try:
                conn.setblocking(True)
                self._serve(conn, deadline)
            except Exception:  # one connection's trouble never ends a handler thread
                log.debug("control connection failed", exc_info=True)
            finally:
                linger_close(conn)

    @property
    def handler_threads(self) -> int:
        """How many handler threads exist now (0 when the daemon has been idle for a while)."""
        with self._work_ready:
            return self._handlers

    # --- stopping ---------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the loop to stop (from another thread): one byte on its socketpair wakes it."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    @property
    def stopped(self) -> threading.Event:
        """Set once the loop has ended (a daemon waits on it through its clock)."""
        return self._done

    def shutdown(self, timeout: float = 5.0) -> bool:
        """:meth:`request_stop`, then wait up to ``timeout`` for the loop to end; True if it did."""
        self.request_stop()
        return self._done.wait(timeout)

    def server_close(self) -> None:
        with contextlib.suppress(OSError):
            self.socket.close()
        with self._work_ready:
            self._closing = True
            left, self._jobs = list(self._jobs), collections.deque()
            self._work_ready.notify_all()
        for conn, _ in left:
            with contextlib.suppress(OSError):
                conn.close()
        for sock in (self._wake_r, self._wake_w):
            sock.close()
