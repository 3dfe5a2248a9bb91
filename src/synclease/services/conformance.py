"""``synclease protocol check``: observe one live daemon from outside, as ``protocol/`` describes it, and
judge it clause by clause (:mod:`synclease.core.conformance`).

It reads only what lease-v1 says a daemon exposes: the singleton record and the lease file in the
daemon root, ``GET /api/health``, and the OS tables (listening sockets, process start time). It
writes nothing and sends nothing but ``GET /api/health``, except with ``retire``: then it sends one
``POST /api/retire`` without a token (which a conforming daemon refuses), and retires the daemon once,
by a token-bearing request or by superseding it with a newer singleton record that names no real
instance (cleared again afterwards, under the singleton lock, if it still names that placeholder).
"""

from __future__ import annotations

import os
from pathlib import Path

from synclease.adapters import http_client, process
from synclease.adapters.conformance_io import lease_sample, listening_sockets, path_exists
from synclease.adapters.ids import new_instance_id
from synclease.adapters.lease_store import LeaseStore
from synclease.adapters.root import DaemonRoot
from synclease.core.clock import Clock
from synclease.core.conformance import (
    RENEW_SLACK_SECONDS,
    RETIRE_DEADLINE_SECONDS,
    ClauseResult,
    LeaseSample,
    RetireMode,
    RetireSeen,
    Sighting,
    evaluate,
)
from synclease.core.constants import HEALTH_TIMEOUT_SECONDS, RETIRE_REQUEST_TIMEOUT_SECONDS
from synclease.core.errors import BadInputError
from synclease.core.health import HealthReport, parse_health
from synclease.core.identity import StartStamp, same_start
from synclease.core.lease import LeaseRecord, SingletonRecord
from synclease.core.record import record, replace

POLL_SECONDS = 0.05
#: Families whose daemons keep no lease-v1 record (lease-v1 §3): only their listener is checked.
NO_LEASE_FAMILIES = {
    "dashboard": "the dashboard family keeps no lease-v1 record (lease-v1 L1.FILES.FAMILIES)"
}
#: A daemon reporting work in flight may take this much longer to retire, at most.
MAX_DRAIN_SECONDS = 120.0


@record
class CheckTarget:
    """Where the daemon to check is: a loopback port, or a daemon root and family."""

    port: int | None = None
    root: Path | None = None
    family: str = "sync"


@record
class Located:
    family: str
    port: int
    root: Path | None
    instance_id: str | None
    no_lease: str | None = None


@record
class CheckReport:
    located: Located
    results: tuple[ClauseResult, ...]
    retire: RetireMode | None
    pid: int | None

    @property
    def ok(self) -> bool:
        return not any(result.failed for result in self.results)


def _health(
    port: int, timeout: float = HEALTH_TIMEOUT_SECONDS
) -> tuple[http_client.Reply, HealthReport | None]:
    reply = http_client.get_json(port, "/api/health", timeout)
    return reply, (parse_health(reply.document) if reply.status == 200 else None)


def _by_port(port: int, family: str) -> Located:
    reply, report = _health(port, 2.0)
    if reply.status is None:
        raise BadInputError(
            f"nothing answers GET /api/health on 127.0.0.1:{port} ({reply.error})",
            hint="start the daemon, or pass the port it serves with --port",
        )
    family = (report.family if report is not None and report.family else None) or family
    if family in NO_LEASE_FAMILIES:
        return Located(family, port, None, None, NO_LEASE_FAMILIES[family])
    root = report.daemon_root if report is not None else None
    return Located(
        family,
        port,
        Path(root) if root and root.startswith("/") else None,
        report.instance_id if report else None,
    )


def _by_root(root: Path, family: str) -> Located:
    if family in NO_LEASE_FAMILIES:
        raise BadInputError(
            f"--root cannot find a {family} daemon: {NO_LEASE_FAMILIES[family]}",
            hint=f"target the {family} daemon with --port",
        )
    if not root.is_dir():
        raise BadInputError(f"--root {root} is not a directory", hint="pass the daemon root (SYNCLEASE_HOME)")
    resolved = root.resolve()
    store = LeaseStore(DaemonRoot(resolved), family)
    recorded = store.read_singleton().record
    chosen: LeaseRecord | None = store.read(recorded.instance_id).lease if recorded is not None else None
    if chosen is None:
        trusted = [entry.lease for entry in store.list() if entry.lease is not None]
        chosen = max(trusted, key=lambda lease: lease.renewed_at, default=None)
    if chosen is None:
        raise BadInputError(
            f"no {family} daemon is recorded under {resolved} (no singleton record, no trusted lease)",
            hint="start one, or target a daemon with --port",
        )
    return Located(family, chosen.port, resolved, chosen.instance_id)


def locate(target: CheckTarget) -> Located:
    if target.port is not None:
        return _by_port(target.port, target.family)
    if target.root is not None:
        return _by_root(target.root, target.family)
    raise BadInputError("no daemon named", hint="pass --port N, or --root DIR [--family NAME]")


def watch(located: Located, clock: Clock, max_seconds: float) -> tuple[LeaseSample, ...]:
    """Lease samples until three distinct renewals were seen, or a TTL (at most ``max_seconds``) passed."""
    if located.root is None or located.instance_id is None:
        return ()
    samples: list[LeaseSample] = []
    started = clock.monotonic()
    window = max_seconds
    renewals: set[object] = set()
    while True:
        sample = lease_sample(located.root, located.family, located.instance_id, clock)
        samples.append(sample)
        if sample.lease is not None:
            window = min(max_seconds, sample.lease.ttl_seconds)
            renewals.add(sample.lease.renewed_at)
        if len(renewals) >= 3 or clock.monotonic() - started >= window:
            return tuple(samples)
        clock.sleep(POLL_SECONDS)


def _gone(pid: int, start: StartStamp | None) -> bool:
    facts = process.facts(pid)
    if not facts.exists or start is None or facts.start_time is None:
        return not facts.exists
    return not same_start(start, facts.start)


def in_flight(port: int) -> bool:
    """Whether the daemon's self-report says work is in flight now (``sync.in_flight``)."""
    report = _health(port)[1]
    return bool(report and report.work_in_flight)


def await_gone(
    located: Located, lease: LeaseRecord, clock: Clock, *, mode: RetireMode, base: float, busy: bool
) -> RetireSeen:
    """Poll until the lease file, the process and its listener are all gone, or the deadline passes.
    Time the daemon reports work in flight extends the deadline (at most :data:`MAX_DRAIN_SECONDS`)."""
    assert located.root is not None
    path = DaemonRoot(located.root).lease_path(lease.instance_id, located.family)
    working = False
    seen = RetireSeen(mode, in_flight_at_start=busy, deadline=base)
    started, drained = clock.monotonic(), 0.0
    while True:
        tick = clock.monotonic()
        lease_gone = not path_exists(path)
        process_gone = _gone(lease.pid, lease.start)
        sockets, _ = listening_sockets(lease.port)
        port_closed = not any(s.pid == lease.pid for s in sockets)
        elapsed = tick - started
        seen = replace(
            seen,
            lease_gone=lease_gone,
            process_gone=process_gone,
            port_closed=port_closed,
            seconds=elapsed,
            deadline=base + drained,
        )
        if (lease_gone and process_gone and port_closed) or elapsed > base + drained:
            return seen
        if not process_gone:
            _, report = _health(lease.port, 0.3)
            working = bool(report and report.work_in_flight)
            seen = replace(
                seen,
                answered_after=seen.answered_after + (report is not None),
                seen_working_after=seen.seen_working_after or working,
            )
        clock.sleep(POLL_SECONDS)
        if working:
            drained = min(MAX_DRAIN_SECONDS, drained + clock.monotonic() - tick)


def unauthenticated_retire(port: int) -> tuple[int | None, bool]:
    """``POST /api/retire`` without a token: its status, and whether the daemon still serves, not draining."""
    reply = http_client.request(port, "POST", "/api/retire", timeout=RETIRE_REQUEST_TIMEOUT_SECONDS)
    after, report = _health(port)
    survived = after.status == 200 and (report is None or report.lease_state != "draining")
    return reply.status, survived


def retire_by_request(located: Located, lease: LeaseRecord, clock: Clock) -> RetireSeen:
    busy = in_flight(lease.port)
    reply = http_client.post(lease.port, "/api/retire", lease.token, RETIRE_REQUEST_TIMEOUT_SECONDS)
    if reply.status != 202:
        return RetireSeen("request", status=reply.status, in_flight_at_start=busy)
    return replace(
        await_gone(located, lease, clock, mode="request", base=RETIRE_DEADLINE_SECONDS, busy=busy), status=202
    )


def retire_by_supersession(located: Located, lease: LeaseRecord, clock: Clock) -> RetireSeen:
    """Only on the recorded singleton: record a newer generation naming a placeholder instance."""
    assert located.root is not None
    store = LeaseStore(DaemonRoot(located.root), located.family)
    placeholder = f"protocol-check-{new_instance_id()}"
    busy = in_flight(lease.port)
    with store.singleton_lock():
        current = store.read_singleton().record
        if current is None or current.instance_id != lease.instance_id:
            return RetireSeen("superseded", "not the recorded singleton: supersession is checked only on it")
        store.write_singleton(
            SingletonRecord(
                family=located.family,
                instance_id=placeholder,
                generation=store.next_generation(clock),
                pid=os.getpid(),
                port=lease.port,
                package_version=lease.package_version,
                protocol_version=lease.protocol_version,
                written_at=clock.now(),
            )
        )
    try:
        deadline = lease.ttl_seconds / 3 + RENEW_SLACK_SECONDS + RETIRE_DEADLINE_SECONDS
        return await_gone(located, lease, clock, mode="superseded", base=deadline, busy=busy)
    finally:
        with store.singleton_lock():
            store.clear_singleton_if(placeholder)


def check(
    target: CheckTarget, clock: Clock, *, retire: RetireMode | None = None, max_watch: float = 30.0
) -> CheckReport:
    """Observe the daemon at ``target`` and judge every clause; retire it only when ``retire`` is set."""
    located = locate(target)
    samples = watch(located, clock, max_watch)
    reply, report = _health(located.port, 2.0)
    sockets, table_error = listening_sockets(located.port)
    lease = next((s.lease for s in reversed(samples) if s.lease is not None), None)
    pid = lease.pid if lease is not None else (report.pid if report is not None else None)
    obs = Sighting(
        family=located.family,
        port=located.port,
        no_lease=located.no_lease,
        samples=samples,
        health_status=reply.status,
        health_error=reply.error,
        health_document=reply.document,
        health=report,
        sockets=sockets,
        table_error=table_error,
        process=process.facts(pid) if pid is not None else None,
    )
    if retire is not None and located.no_lease is None:
        status, survived = unauthenticated_retire(located.port)
        seen: RetireSeen | None = None
        if lease is not None:
            act = retire_by_request if retire == "request" else retire_by_supersession
            seen = act(located, lease, clock)
        obs = replace(obs, unauth_status=status, unauth_survived=survived, retire=seen)
    return CheckReport(located, evaluate(obs), retire if located.no_lease is None else None, pid)
