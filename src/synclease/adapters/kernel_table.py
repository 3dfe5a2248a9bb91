"""Linux's table of listening TCP sockets, read from the kernel: one ``NETLINK_SOCK_DIAG`` dump per
address family (about 0.1 ms however many processes run), else ``/proc/net/tcp`` and ``tcp6`` where
netlink is refused (a few ms: the kernel walks its whole connection hash). The bytes are parsed in
:mod:`synclease.core.sock_diag`; which PID holds a socket is proven elsewhere (:mod:`.procfs`).
"""

from __future__ import annotations

import itertools
import socket
import sys

from synclease.adapters.environment import failpoint
from synclease.core.sock_diag import (
    AF_INET,
    AF_INET6,
    DiagError,
    KernelSocket,
    listen_request,
    parse_dump,
    parse_proc_net_tcp,
)

NETLINK_SOCK_DIAG = 4
SOURCE_SOCK_DIAG = "sock_diag"
SOURCE_PROC_NET = "proc_net"
_RECV_BYTES = 65536
_MAX_ANSWER_BYTES = 16 * 1024 * 1024
_PROC_NET_MAX_BYTES = 64 * 1024 * 1024
_TIMEOUT_SECONDS = 1.0
_seq = itertools.count(1)


def _dump(sock: socket.socket, family: int) -> list[KernelSocket]:
    sock.send(listen_request(family, next(_seq)))
    found: list[KernelSocket] = []
    total = 0
    while True:
        data = sock.recv(_RECV_BYTES)
        total += len(data)
        if not data or total > _MAX_ANSWER_BYTES:
            raise DiagError(0, "sock_diag answer ended early or exceeded its bound")
        sockets, done = parse_dump(data)
        found.extend(sockets)
        if done:
            return found


def read_sock_diag() -> list[KernelSocket]:
    """Every TCP LISTEN socket of this network namespace, both families, from one netlink socket.

    Raises ``OSError`` when netlink is refused (no such family, a seccomp filter, the
    ``no_sock_diag`` failpoint) and :class:`DiagError` when the kernel answers an error."""
    if failpoint("no_sock_diag"):
        raise PermissionError("sock_diag refused by the no_sock_diag failpoint")
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as sock:
        sock.settimeout(_TIMEOUT_SECONDS)
        return _dump(sock, AF_INET) + _dump(sock, AF_INET6)


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(_PROC_NET_MAX_BYTES).decode("ascii", "replace")
    except FileNotFoundError:  # no IPv6 in this kernel
        return None


def read_proc_net() -> list[KernelSocket]:
    """The same table from ``/proc/net/tcp`` and ``tcp6`` (raises ``OSError`` when tcp is unreadable)."""
    little = sys.byteorder == "little"
    found: list[KernelSocket] = []
    for path, family in (("/proc/net/tcp", AF_INET), ("/proc/net/tcp6", AF_INET6)):
        text = _read_text(path)
        if text is None and family == AF_INET:
            raise FileNotFoundError(path)
        if text is not None:
            found.extend(parse_proc_net_tcp(text, family, little_endian=little))
    return found


def read_listeners() -> tuple[list[KernelSocket], str]:
    """The kernel's LISTEN sockets and where they came from (``sock_diag`` or ``proc_net``); raises
    ``OSError`` when neither can be read (then the caller falls back to per-PID proofs)."""
    try:
        return read_sock_diag(), SOURCE_SOCK_DIAG
    except (OSError, DiagError):
        return read_proc_net(), SOURCE_PROC_NET
