"""Which PID holds each listener on our ports, proven from the claimed PID's own descriptors (ADR 0014).

Linux: the kernel's table (:mod:`.kernel_table`) gives each listening socket's port, uid and inode. A
PID that a lease, the singleton record or the self-report names (a *claim*) is proven when its own
descriptor table (``/proc/<pid>/fd``) holds every best-ranked socket of the port and its effective
uid is the sockets' uid. Exactly one proven claim is the listener's PID; two are ambiguous (PID
unknown); a claimed PID that holds the sockets under another uid leaves the PID unknown. A listener no
claim proves, whose owner a finding needs, is looked up by the one process walk of the scan (every
PID's descriptors, once, for all such listeners together); one nobody claims and that does not speak
a family keeps an unknown PID (it is ``third_party`` whoever owns it).

Without the kernel table (macOS, where ``net_connections`` needs root; the ``no_kernel_table``
failpoint forces it on Linux) a claim is proven by that PID's own connection list (psutil), and the
walk is ``psutil.net_connections``, whose refusal is the scan's ``listener_table_error``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from synclease.adapters import kernel_table, process, procfs
from synclease.core.fleet import Listener
from synclease.core.identity import ProcessFacts
from synclease.core.record import record
from synclease.core.sock_diag import KernelSocket, reachable_listeners

SOURCE_PER_PID = "per_pid"


@record
class TableRead:
    """One read of the kernel's listener table: per port, the best-ranked reachable LISTEN sockets;
    where they came from (``sock_diag``, ``proc_net``, or ``per_pid`` when there is no table); and why
    it could not be read, if it could not."""

    sockets: Mapping[int, tuple[KernelSocket, ...]]
    source: str
    error: str | None = None

    @property
    def per_pid(self) -> bool:
        return self.source == SOURCE_PER_PID


@record
class Want:
    """What a port's listener is resolved with: the PIDs that claim it, and whether a finding needs its
    owner when no claim proves it (then it may cost the walk)."""

    claims: tuple[int, ...] = ()
    owner_needed: bool = True


def read_table(ports: range) -> TableRead:
    """The kernel's listeners on ``ports``; on a host without the table, an empty ``per_pid`` read."""
    if not process.kernel_table_available():
        return TableRead({}, SOURCE_PER_PID)
    try:
        sockets, source = kernel_table.read_listeners()
    except OSError as exc:
        return TableRead({}, SOURCE_PER_PID, f"unreadable:{type(exc).__name__}")
    return TableRead(reachable_listeners(sockets, ports), source)


class Resolver:
    """Resolves the listeners of one scan: a PID's facts are read once, and the process walk runs at
    most once, for every listener that needs it together."""

    def __init__(self, read: TableRead) -> None:
        self.read = read
        self.walked = False
        self._facts: dict[int, ProcessFacts] = {}
        self._walk_error: str | None = None

    @property
    def error(self) -> str | None:
        return self.read.error or self._walk_error

    def _fill(self, port: int, pid: int) -> Listener:
        return process.with_facts(Listener(port, pid), self._facts)

    def _prove(self, socks: tuple[KernelSocket, ...], claims: Collection[int]) -> tuple[list[int], bool]:
        """The claimed PIDs proven to hold ``socks``, and whether one held them under another uid."""
        inodes = {s.inode for s in socks}
        uids = {s.uid for s in socks}
        proven: list[int] = []
        foreign = False
        for pid in sorted({p for p in claims if p > 0}):
            if not procfs.holds_sockets(pid, inodes):
                continue
            if pid not in self._facts:
                self._facts[pid] = process.facts(pid)
            uid = self._facts[pid].uid
            if uid is not None and uids == {uid}:
                proven.append(pid)
            else:
                foreign = True
        return proven, foreign

    def _prove_per_pid(self, port: int, claims: Collection[int]) -> list[int]:
        return [pid for pid in sorted({p for p in claims if p > 0}) if process.listens_on(pid, port) is True]

    def resolve(self, wanted: Mapping[int, Want]) -> dict[int, Listener | None]:
        """Port → its listener (None: the kernel table shows none there). Ports the table lacks are
        resolved per PID when there is no table (the caller passes the ports that accepted)."""
        out: dict[int, Listener | None] = {}
        pending: list[int] = []
        for port, want in wanted.items():
            socks = self.read.sockets.get(port)
            if self.read.per_pid:
                proven, foreign = self._prove_per_pid(port, want.claims), False
            elif not socks:
                out[port] = None
                continue
            else:
                proven, foreign = self._prove(socks, want.claims)
            if len(proven) == 1:
                out[port] = self._fill(port, proven[0])
            elif proven or foreign or not want.owner_needed:
                out[port] = Listener(port)
            else:
                pending.append(port)
        out.update(self._walk(pending))
        return out

    def _walk(self, ports: list[int]) -> dict[int, Listener]:
        if not ports:
            return {}
        self.walked = True
        if self.read.per_pid:
            table, self._walk_error = process.psutil_listener_table(range(min(ports), max(ports) + 1))
            return {port: self._fill_optional(table.get(port, Listener(port))) for port in ports}
        inodes = {s.inode for port in ports for s in self.read.sockets[port]}
        owners, _complete = procfs.socket_owners(inodes)
        out: dict[int, Listener] = {}
        for port in ports:
            holders = set().union(*(owners.get(s.inode, set()) for s in self.read.sockets[port]))
            out[port] = self._fill(port, holders.pop()) if len(holders) == 1 else Listener(port)
        return out

    def _fill_optional(self, listener: Listener) -> Listener:
        return listener if listener.pid is None else self._fill(listener.port, listener.pid)


def read_listener_table(
    ports: range, claims: Mapping[int, Collection[int]] | None = None
) -> tuple[dict[int, Listener], str | None]:
    """Port → :class:`Listener` for every TCP LISTEN socket reachable on 127.0.0.1 in ``ports`` (on a
    host without the kernel table: the claimed ports only), and an error tag if the table was
    unreadable. ``claims`` (port → PIDs) are proven first; the rest cost the one walk."""
    read = read_table(ports)
    given = claims or {}
    ports_seen = set(given) if read.per_pid else set(read.sockets)
    resolver = Resolver(read)
    table = resolver.resolve({port: Want(tuple(given.get(port, ()))) for port in sorted(ports_seen)})
    if read.per_pid:
        table = {port: entry for port, entry in table.items() if entry is not None and entry.pid is not None}
    return {port: entry for port, entry in table.items() if entry is not None}, resolver.error


def listener_table(ports: range, claims: Mapping[int, Collection[int]] | None = None) -> dict[int, Listener]:
    """Port → :class:`Listener` for every TCP LISTEN socket reachable on 127.0.0.1 in ``ports``."""
    return read_listener_table(ports, claims)[0]
