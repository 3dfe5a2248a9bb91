"""The kernel's table of listening TCP sockets, as bytes: the ``NETLINK_SOCK_DIAG`` (inet_diag) message
layout and the ``/proc/net/tcp{,6}`` text, parsed into :class:`KernelSocket` values. Pure: the adapter
(:mod:`synclease.adapters.kernel_table`) does the socket and file I/O (ADR 0014).

The request (host byte order except where noted; every message 4-byte aligned)::

    struct nlmsghdr        (16)  u32 len, u16 type = SOCK_DIAG_BY_FAMILY (20),
                                 u16 flags = NLM_F_REQUEST | NLM_F_DUMP, u32 seq, u32 pid = 0
    struct inet_diag_req_v2 (56) u8 family (AF_INET 2 / AF_INET6 10), u8 protocol (IPPROTO_TCP 6),
                                 u8 ext = 0, u8 pad, u32 states = 1 << TCP_LISTEN (10),
                                 struct inet_diag_sockid (48, zero in a dump)

Each answer is a ``nlmsghdr`` followed by::

    struct inet_diag_msg   (72)  u8 family, u8 state, u8 timer, u8 retrans,
                                 struct inet_diag_sockid: be16 sport, be16 dport, be32 src[4],
                                   be32 dst[4], u32 if, u32 cookie[2],
                                 u32 expires, u32 rqueue, u32 wqueue, u32 uid, u32 inode
                                 (then rtattrs, not read)

until a ``NLMSG_DONE`` (3); ``NLMSG_ERROR`` (2) carries a negative errno in its first 4 bytes.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Mapping

from synclease.core.record import record

AF_INET = 2
AF_INET6 = 10
IPPROTO_TCP = 6
TCP_LISTEN = 10
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLM_F_MULTI = 0x2

_HEADER = struct.Struct("=IHHII")
_REQUEST = struct.Struct("=BBBxI48x")
_MESSAGE = struct.Struct("=BBBB2s2s16s16sI8sIIIII")
_V4_MAPPED = bytes(10) + b"\xff\xff"
_SOCKET_LINK = re.compile(r"socket:\[(\d+)\]\Z")

#: Listening addresses a connection to 127.0.0.1 can reach, best first: a specific loopback bind wins
#: over a wildcard one on the same port (that is what the kernel routes to).
REACHABLE_ADDRESSES: Mapping[str, int] = {"127.0.0.1": 0, "::ffff:127.0.0.1": 0, "0.0.0.0": 1, "::": 1}


class DiagError(Exception):
    """The kernel answered a sock_diag dump with an error (``errno``), or the answer was malformed."""

    def __init__(self, errno: int, detail: str) -> None:
        super().__init__(detail)
        self.errno = errno


@record
class KernelSocket:
    """One TCP socket of the kernel's table: its local address and port, state, owner uid and inode."""

    family: int
    address: str
    port: int
    state: int
    uid: int
    inode: int

    @property
    def rank(self) -> int | None:
        """How directly a connection to 127.0.0.1 reaches it (0 best), None when it cannot."""
        return REACHABLE_ADDRESSES.get(self.address)


def listen_request(family: int, seq: int) -> bytes:
    """One dump request for ``family``'s TCP sockets in LISTEN state."""
    body = _REQUEST.pack(family, IPPROTO_TCP, 0, 1 << TCP_LISTEN)
    return (
        _HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body
    )


def _address(family: int, raw: bytes) -> str:
    """The local address as text: dotted IPv4; IPv6 as ``::`` (any), ``::ffff:a.b.c.d`` (v4-mapped)
    or eight full hex groups (no ``ipaddress`` import: it costs ~1.5 ms of every CLI start)."""
    if family == AF_INET:
        return ".".join(str(b) for b in raw[:4])
    raw = raw[:16]
    if not any(raw):
        return "::"
    if raw[:12] == _V4_MAPPED:
        return "::ffff:" + ".".join(str(b) for b in raw[12:16])
    return ":".join(raw[i : i + 2].hex() for i in range(0, 16, 2))


def parse_dump(data: bytes) -> tuple[list[KernelSocket], bool]:
    """The sockets in one ``recv`` of a dump, and whether its ``NLMSG_DONE`` arrived.

    Raises :class:`DiagError` for an ``NLMSG_ERROR`` answer or a message that does not fit."""
    sockets: list[KernelSocket] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, _seq, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > len(data):
            raise DiagError(0, f"netlink message of {length} bytes at offset {offset} overruns the answer")
        body = offset + _HEADER.size
        if kind == NLMSG_DONE:
            return sockets, True
        if kind == NLMSG_ERROR:
            (errno,) = struct.unpack_from("=i", data, body)
            raise DiagError(-errno, f"sock_diag answered error {-errno}")
        if kind == SOCK_DIAG_BY_FAMILY:
            if length - _HEADER.size < _MESSAGE.size:
                raise DiagError(0, f"inet_diag_msg of {length - _HEADER.size} bytes is too short")
            family, state, _t, _r, sport, _dport, src, _dst, _if, _c, _e, _rq, _wq, uid, inode = (
                _MESSAGE.unpack_from(data, body)
            )
            port = int.from_bytes(sport, "big")
            sockets.append(KernelSocket(family, _address(family, src), port, state, uid, inode))
        offset += (length + 3) & ~3
    return sockets, False


def _proc_address(hex_address: str, little_endian: bool) -> bytes:
    """``/proc/net/tcp`` prints the address as 32-bit words in host byte order."""
    raw = bytes.fromhex(hex_address)
    if not little_endian:
        return raw
    return b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))


def parse_proc_net_tcp(text: str, family: int, *, little_endian: bool) -> list[KernelSocket]:
    """The LISTEN sockets of a ``/proc/net/tcp`` (``family`` AF_INET) or ``tcp6`` (AF_INET6) text.

    Columns: ``sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...``; the
    address is ``HEX:PORT``. Lines that do not parse are skipped (the header among them)."""
    sockets: list[KernelSocket] = []
    for line in text.splitlines()[1:]:
        columns = line.split()
        if len(columns) < 10:
            continue
        try:
            state = int(columns[3], 16)
            if state != TCP_LISTEN:
                continue
            hex_address, _, hex_port = columns[1].partition(":")
            raw = _proc_address(hex_address, little_endian)
            address = _address(family, raw)
            sockets.append(
                KernelSocket(family, address, int(hex_port, 16), state, int(columns[7]), int(columns[9]))
            )
        except ValueError:
            continue
    return sockets


def socket_inode(link: str) -> int | None:
    """The inode a ``/proc/<pid>/fd/<n>`` link names when it is a socket (``socket:[123]``), else None."""
    found = _SOCKET_LINK.match(link)
    return None if found is None else int(found.group(1))


def reachable_listeners(sockets: Iterable[KernelSocket], ports: range) -> dict[int, tuple[KernelSocket, ...]]:
    """Per port in ``ports``: the LISTEN sockets a connection to 127.0.0.1 reaches, best rank only.
    More than one (``SO_REUSEPORT``, or a v4 and a v6 wildcard) means the owner must hold them all."""
    best: dict[int, tuple[int, list[KernelSocket]]] = {}
    for sock in sockets:
        rank = sock.rank
        if sock.state != TCP_LISTEN or rank is None or sock.port not in ports:
            continue
        current = best.get(sock.port)
        if current is None or rank < current[0]:
            best[sock.port] = (rank, [sock])
        elif rank == current[0] and all(s.inode != sock.inode for s in current[1]):
            current[1].append(sock)
    return {port: tuple(found) for port, (_rank, found) in sorted(best.items())}
