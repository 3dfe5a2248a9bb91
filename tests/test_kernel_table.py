"""The kernel's listener table (ADR 0014): sock_diag bytes, the ``/proc/net/tcp{,6}`` fallback, both
checked against ``ss -ltn`` on the same real sockets; the per-PID path forced on Linux; and a PID that
does not hold the socket (a real listening socket passed to another process by ``SCM_RIGHTS``) is
``identity_mismatch``, never ``safe_auto``.

Sockets bind 127.0.0.1 / ``::`` on this run's test ports only; only processes started here are signalled.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psutil
import pytest

from synclease.adapters import kernel_table, listeners, process, procfs
from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.core.classify import classify
from synclease.core.fleet import CleanupClass, FleetContext, Listener, Observation, SkipReason
from synclease.core.health import parse_health
from synclease.core.lease import LeaseRecord
from synclease.core.sock_diag import (
    AF_INET,
    AF_INET6,
    NLMSG_DONE,
    NLMSG_ERROR,
    SOCK_DIAG_BY_FAMILY,
    DiagError,
    KernelSocket,
    listen_request,
    parse_dump,
    parse_proc_net_tcp,
    reachable_listeners,
    socket_inode,
)
from synclease.services.survey import survey
from tests.conftest import GENERAL_PORTS, Sandbox, port_free
from tests.test_reaper_live import expired_lease

linux_only = pytest.mark.skipif(not procfs.available(), reason="the kernel table is Linux's")
IDLE_PROCESS = "import signal\nwhile True:\n    signal.pause()\n"

#: Receives a listening socket over a unix socket (SCM_RIGHTS), says ready, then answers every
#: connection with the JSON body in argv[2]: a process that holds a socket it did not create.
SERVE_PASSED = r"""
import socket, sys
chan = socket.socket(fileno=int(sys.argv[1]))
_msg, fds, _flags, _addr = socket.recv_fds(chan, 16, 1)
server = socket.socket(fileno=fds[0])
chan.sendall(b"ready")
body = sys.argv[2].encode()
head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
head += b"Content-Length: %d\r\n\r\n" % len(body)
while True:
    conn, _ = server.accept()
    conn.settimeout(2)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        if data:
            conn.sendall(head + body)
    except OSError:
        pass
    conn.close()
"""


def free_ports(count: int) -> list[int]:
    found = [port for port in GENERAL_PORTS if port_free(port)][:count]
    if len(found) < count:
        pytest.skip("not enough free test ports")
    return found


@pytest.fixture
def bound() -> Iterator[dict[int, socket.socket]]:
    """Three real listeners of this process: 127.0.0.1, 0.0.0.0 and ``::`` (dual-stack)."""
    ports = free_ports(3)
    socks: dict[int, socket.socket] = {}
    try:
        for port, (family, host) in zip(
            ports,
            ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")),
            strict=True,
        ):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen()
            socks[port] = sock
        yield socks
    finally:
        for sock in socks.values():
            sock.close()


def ss_listeners(ports: set[int]) -> set[tuple[int, int]]:
    """``(port, inode)`` of every TCP LISTEN socket on ``ports`` as ``ss -ltn`` shows it."""
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is not installed")
    out = subprocess.run(["ss", "-ltnHe"], capture_output=True, text=True, check=True).stdout
    found = set()
    for line in out.splitlines():
        columns = line.split()
        port = int(columns[3].rpartition(":")[2])
        inode = next(int(c[4:]) for c in columns if c.startswith("ino:"))
        if port in ports:
            found.add((port, inode))
    return found


def ours(sockets: list[KernelSocket], ports: set[int]) -> set[tuple[int, int]]:
    return {(s.port, s.inode) for s in sockets if s.port in ports}


# --- the message layout (pure) ------------------------------------------------------------------


def diag_message(family: int, address: bytes, port: int, uid: int, inode: int) -> bytes:
    body = struct.pack("=BBBB", family, 10, 0, 0) + port.to_bytes(2, "big") + b"\0\0"
    body += address.ljust(16, b"\0") + bytes(16) + bytes(4) + bytes(8)
    body += struct.pack("=IIIII", 0, 0, 0, uid, inode) + b"\x08\x00\x01\x00\x00\x00\x00\x00"  # an rtattr
    return struct.pack("=IHHII", 16 + len(body), SOCK_DIAG_BY_FAMILY, 2, 1, 0) + body


def test_the_request_is_a_listen_dump_of_one_family() -> None:
    raw = listen_request(AF_INET6, 7)
    assert len(raw) == 72
    length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", raw)
    assert (length, kind, flags, seq) == (72, SOCK_DIAG_BY_FAMILY, 0x301, 7)
    family, protocol, ext, states = struct.unpack_from("=BBBxI", raw, 16)
    assert (family, protocol, ext, states) == (AF_INET6, 6, 0, 1 << 10)


def test_a_dump_parses_both_families_and_stops_at_done() -> None:
    v4 = diag_message(AF_INET, bytes([127, 0, 0, 1]), 9401, 1000, 555)
    mapped = bytes(10) + b"\xff\xff" + bytes([127, 0, 0, 1])
    v6 = diag_message(AF_INET6, mapped, 9402, 1000, 556)
    wild = diag_message(AF_INET6, bytes(16), 9403, 0, 557)
    done = struct.pack("=IHHII", 20, NLMSG_DONE, 2, 1, 0) + bytes(4)
    sockets, finished = parse_dump(v4 + v6 + wild + done)
    assert finished
    assert [(s.address, s.port, s.uid, s.inode) for s in sockets] == [
        ("127.0.0.1", 9401, 1000, 555),
        ("::ffff:127.0.0.1", 9402, 1000, 556),
        ("::", 9403, 0, 557),
    ]
    assert parse_dump(v4) == ([sockets[0]], False)


def test_a_dump_error_or_an_overrun_is_a_diag_error() -> None:
    error = struct.pack("=IHHII", 36, NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -13) + bytes(16)
    with pytest.raises(DiagError) as caught:
        parse_dump(error)
    assert caught.value.errno == 13
    with pytest.raises(DiagError):
        parse_dump(struct.pack("=IHHII", 400, SOCK_DIAG_BY_FAMILY, 2, 1, 0) + bytes(40))


def test_proc_net_tcp_text_parses_listeners_only() -> None:
    v4 = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:24B9 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0\n"
        "   1: 0100007F:24BA 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 4243 1 0\n"
        "   2: garbage\n"
    )
    assert parse_proc_net_tcp(v4, AF_INET, little_endian=True) == [
        KernelSocket(AF_INET, "127.0.0.1", 9401, 10, 1000, 4242)
    ]
    v6 = (
        "  sl  local_address                         remote_address                        st ...\n"
        "   0: 0000000000000000FFFF00000100007F:24BB 00000000000000000000000000000000:0000 0A "
        "00000000:00000000 00:00000000 00000000     0        0 777 1 0\n"
    )
    assert parse_proc_net_tcp(v6, AF_INET6, little_endian=True) == [
        KernelSocket(AF_INET6, "::ffff:127.0.0.1", 9403, 10, 0, 777)
    ]


def test_only_the_best_reachable_sockets_of_a_port_count() -> None:
    table = reachable_listeners(
        [
            KernelSocket(AF_INET, "0.0.0.0", 9401, 10, 0, 1),
            KernelSocket(AF_INET, "127.0.0.1", 9401, 10, 0, 2),  # the specific bind wins
            KernelSocket(AF_INET6, "::", 9402, 10, 0, 3),
            KernelSocket(AF_INET, "0.0.0.0", 9402, 10, 0, 4),  # same rank: the owner must hold both
            KernelSocket(AF_INET, "10.0.0.1", 9403, 10, 0, 5),  # unreachable from 127.0.0.1
            KernelSocket(AF_INET, "127.0.0.1", 9460, 10, 0, 6),  # not our range
        ],
        range(9400, 9450),
    )
    assert {port: [s.inode for s in found] for port, found in table.items()} == {9401: [2], 9402: [3, 4]}
    assert socket_inode("socket:[123]") == 123 and socket_inode("pipe:[123]") is None


# --- the kernel table against ss, and its fallback ------------------------------------------------


@linux_only
def test_sock_diag_shows_what_ss_shows(bound: dict[int, socket.socket]) -> None:
    ports = set(bound)
    sockets = kernel_table.read_sock_diag()
    assert ours(sockets, ports) == ss_listeners(ports)
    inodes = {port: os.fstat(sock.fileno()).st_ino for port, sock in bound.items()}
    mine = {s.port: s for s in sockets if s.port in ports}
    assert {port: s.inode for port, s in mine.items()} == inodes
    assert {s.uid for s in mine.values()} == {os.geteuid()}
    assert sorted(s.address for s in mine.values()) == ["0.0.0.0", "127.0.0.1", "::"]


@linux_only
def test_proc_net_fallback_shows_the_same_when_netlink_is_refused(
    bound: dict[int, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_socket = socket.socket

    def refused(family: int = -1, *args: Any, **kwargs: Any) -> socket.socket:
        if family == socket.AF_NETLINK:
            raise PermissionError(13, "netlink refused (seccomp)")
        return real_socket(family, *args, **kwargs)

    monkeypatch.setattr(kernel_table.socket, "socket", refused)
    sockets, source = kernel_table.read_listeners()
    assert source == "proc_net"
    ports = set(bound)
    assert ours(sockets, ports) == ss_listeners(ports) == ours(kernel_table.read_proc_net(), ports)
    monkeypatch.undo()
    monkeypatch.setenv("SYNCLEASE_FAILPOINTS", "no_sock_diag")
    assert kernel_table.read_listeners()[1] == "proc_net"
    table = listeners.listener_table(
        range(min(ports), max(ports) + 1), {port: [os.getpid()] for port in ports}
    )
    assert {port: entry.pid for port, entry in table.items() if port in ports} == dict.fromkeys(
        ports, os.getpid()
    )


@linux_only
def test_a_claim_is_proven_from_its_own_fd_table_and_uid(bound: dict[int, socket.socket]) -> None:
    port = min(bound)
    read = listeners.read_table(range(port, port + 1))
    assert read.source == "sock_diag"
    resolver = listeners.Resolver(read)
    me, init = os.getpid(), 1
    table = resolver.resolve({port: listeners.Want((init, me))})
    assert table[port] is not None and table[port].pid == me and not resolver.walked
    assert table[port].uid == os.geteuid()
    # Another uid on the socket than on the holder: not proven, and no walk makes it so.
    foreign = listeners.TableRead(
        {
            port: tuple(
                KernelSocket(s.family, s.address, s.port, s.state, s.uid + 1, s.inode)
                for s in read.sockets[port]
            )
        },
        "sock_diag",
    )
    resolver = listeners.Resolver(foreign)
    assert resolver.resolve({port: listeners.Want((me,))})[port] == Listener(port)
    assert not resolver.walked


@linux_only
def test_the_walk_runs_once_for_all_unproven_listeners(
    bound: dict[int, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = procfs.socket_owners

    def counted(inodes: Any) -> Any:
        calls.append(len(inodes))
        return real(inodes)

    monkeypatch.setattr(procfs, "socket_owners", counted)
    ports = sorted(bound)
    resolver = listeners.Resolver(listeners.read_table(range(ports[0], ports[-1] + 1)))
    table = resolver.resolve(
        {ports[0]: listeners.Want((1,)), ports[1]: listeners.Want(()), ports[2]: listeners.Want((), False)}
    )
    assert calls == [2]  # one walk, for the refuted claim and the unclaimed one whose owner is needed
    assert table[ports[0]].pid == table[ports[1]].pid == os.getpid()  # type: ignore[union-attr]
    assert table[ports[2]] == Listener(ports[2])  # nobody needs its owner: no walk for it


def test_the_per_pid_path_forced_on_linux_asks_only_the_claimed_pids(
    bound: dict[int, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_walk(kind: str = "inet") -> list[Any]:
        raise AssertionError("the whole-host table was asked although every listener is claimed")

    monkeypatch.setenv("SYNCLEASE_FAILPOINTS", "no_kernel_table")
    monkeypatch.setattr(psutil, "net_connections", no_walk)
    ports = sorted(bound)
    read = listeners.read_table(range(ports[0], ports[-1] + 1))
    assert read.per_pid and read.error is None
    resolver = listeners.Resolver(read)
    table = resolver.resolve({port: listeners.Want((1, os.getpid())) for port in ports})
    assert {port: entry.pid for port, entry in table.items() if entry is not None} == dict.fromkeys(
        ports, os.getpid()
    )
    assert process.listens_on(os.getpid(), ports[0]) is True


@linux_only
def test_listens_on_reads_the_kernel_table_and_the_fd_table(bound: dict[int, socket.socket]) -> None:
    port = min(bound)
    assert process.listens_on(os.getpid(), port) is True
    child = subprocess.Popen([sys.executable, "-c", IDLE_PROCESS])
    try:
        assert process.listens_on(child.pid, port) is False
    finally:
        child.kill()
        child.wait()


@linux_only
def test_both_fd_table_readers_see_the_same_sockets(bound: dict[int, socket.socket]) -> None:
    """socket_inodes and holds_sockets read one fd-table walk: what one lists the other holds."""
    table = listeners.read_table(range(min(bound), max(bound) + 1))
    mine = {s.inode for port in bound for s in table.sockets[port]}
    held = procfs.socket_inodes(os.getpid())
    assert held is not None and mine <= held
    assert procfs.holds_sockets(os.getpid(), mine) is True
    assert procfs.holds_sockets(os.getpid(), {max(held) + 1}) is False
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    pid = int(gone.stdout)
    assert procfs.socket_inodes(pid) == frozenset()
    assert procfs.holds_sockets(pid, mine) is False


def test_the_scan_does_not_import_psutil_on_linux() -> None:
    code = (
        "import sys\n"
        "from synclease.adapters.probe import scan\n"
        "from synclease.adapters.process import facts\n"
        "import os\n"
        f"scan(range({GENERAL_PORTS.start}, {GENERAL_PORTS.stop}), health_timeout=0.1)\n"
        "assert facts(os.getpid()).start_time is not None\n"
        "print('psutil' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ("False" if procfs.available() else "True")


@linux_only
def test_proc_facts_agree_with_psutil() -> None:
    child = subprocess.Popen([sys.executable, "-c", IDLE_PROCESS])
    try:
        mine = process.facts(child.pid)
        theirs = psutil.Process(child.pid)
        assert mine.exists and mine.start_time == theirs.create_time()
        assert mine.uid == theirs.uids().effective and mine.start_ticks == procfs.start_ticks(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not process.facts(child.pid).exists


# --- a PID that does not hold the socket ------------------------------------------------------------


def _self_report(lease: LeaseRecord) -> dict[str, Any]:
    return {
        "daemon_family": "sync",
        "instance_id": lease.instance_id,
        "scope_id": lease.scope_id,
        "daemon_root": lease.daemon_root,
        "pid": lease.pid,
        "port": lease.port,
        "process_start_time": lease.process_start_time,
        "package_version": lease.package_version,
        "protocol_version": 1,
        "lease": {"state": "serving", "renewed_at": "2026-03-01T10:00:02.000000Z"},
        "sync": {"running": True, "queue_depth": 0, "last_sync": None, "consecutive_failures": 0},
    }


@pytest.mark.live
@pytest.mark.parametrize("failpoints", ["", "no_sock_diag", "no_kernel_table"])
def test_a_socket_passed_to_another_process_is_identity_mismatch(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, failpoints: str
) -> None:
    """X (a live process) is named by the lease and by the self-report, all consistent and expired;
    but the listening socket was passed by SCM_RIGHTS to Z, and nobody else holds it. X does not hold
    the inode, so X is not the listener: the walk finds Z and the record is identity_mismatch."""
    monkeypatch.setenv("SYNCLEASE_FAILPOINTS", failpoints)
    store = LeaseStore(DaemonRoot(sandbox.root.resolve()).prepare())
    port = next((p for p in sandbox.ports if port_free(p)), None)
    assert port is not None
    claimed = sandbox.popen([sys.executable, "-c", IDLE_PROCESS], stdin=subprocess.DEVNULL)
    start = process.facts(claimed.pid).start_time
    assert start is not None
    lease = expired_lease(store, pid=claimed.pid, start=start, port=port)
    store.write(lease)
    parent, child = socket.socketpair()
    with parent, child:
        holder = sandbox.popen(
            [sys.executable, "-c", SERVE_PASSED, str(child.fileno()), json.dumps(_self_report(lease))],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        with socket.create_server(("127.0.0.1", port)) as listening:
            socket.send_fds(parent, [b"x"], [listening.fileno()])
        parent.settimeout(10)
        assert parent.recv(5) == b"ready"

    # Were the claimed PID the listener, every other proof holds: safe_auto.
    ctx = FleetContext(
        scope_id=store.root.scope_id,
        daemon_root=str(store.root.path),
        now=datetime.now(UTC),
        leases=tuple(store.list()),
        port_range=sandbox.ports,
    )
    facts = process.facts(claimed.pid)
    as_claimed = Listener(port, claimed.pid, facts.start_time, facts.start_ticks, facts.boot_id, facts.uid)
    assert classify(Observation(as_claimed, parse_health(_self_report(lease))), ctx).cleanup_class is (
        CleanupClass.SAFE_AUTO
    )

    found = survey(store, SYSTEM_CLOCK, sandbox.ports)
    record = next(r for r in found.records if r.port == port)
    assert record.pid == holder.pid
    assert (record.cleanup_class, record.skip_reason) == (
        CleanupClass.OPERATOR_REQUIRED,
        SkipReason.IDENTITY_MISMATCH,
    )
    assert "pid:lease~listener" in record.mismatches and "pid:self_report~listener" in record.mismatches
    assert claimed.poll() is None and holder.poll() is None

    doc = json.loads(sandbox.cli("auth", "doctor", "--json", env={"SYNCLEASE_FAILPOINTS": failpoints}).stdout)
    row = next(r for r in doc["orphans"] if r["port"] == port)
    assert (row["pid"], row["skip_reason"]) == (holder.pid, "identity_mismatch")


@linux_only
def test_own_rss_from_proc_agrees_with_psutil() -> None:
    mine = process.own_rss_mb()
    theirs = psutil.Process(os.getpid()).memory_info().rss / (1024 * 1024)
    assert mine is not None and abs(mine - theirs) < 1.0


@linux_only
@pytest.mark.live
def test_one_socket_held_by_two_claimed_processes_leaves_the_pid_unknown() -> None:
    """Both claims hold the inode (passed by SCM_RIGHTS, and kept here): ambiguous, as psutil made it."""
    port = free_ports(1)[0]
    parent, child = socket.socketpair()
    holder = None
    try:
        with parent, child, socket.create_server(("127.0.0.1", port)) as listening:
            holder = subprocess.Popen(
                [sys.executable, "-c", SERVE_PASSED, str(child.fileno()), "{}"],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
            )
            socket.send_fds(parent, [b"x"], [listening.fileno()])
            parent.settimeout(10)
            assert parent.recv(5) == b"ready"
            resolver = listeners.Resolver(listeners.read_table(range(port, port + 1)))
            table = resolver.resolve({port: listeners.Want((os.getpid(), holder.pid))})
            assert table[port] == Listener(port) and not resolver.walked
            alone = listeners.Resolver(listeners.read_table(range(port, port + 1)))
            assert alone.resolve({port: listeners.Want((holder.pid,))})[port].pid == holder.pid  # type: ignore[union-attr]
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
