"""``synclease protocol check``: the clauses of lease-v1 a running daemon is judged on, and their verdicts.

Pure: :func:`evaluate` turns what the checker saw from outside (lease file samples, the self-report, the
OS listener table, the answers to control requests) into one :class:`ClauseResult` per clause of
``protocol/lease-v1.md``: ``pass``, ``fail`` (with what was seen) or ``n/a`` (with why). Everything it
reads is something the spec says a daemon exposes; nothing here knows how this package's daemons work.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from synclease.core.conformance_facts import (
    CLAUSES,
    LOOPBACK_ADDRESS,
    RENEW_SLACK_SECONDS,
    RETIRE_DEADLINE_SECONDS,
    Clause,
    ClauseResult,
    LeaseSample,
    RetireMode,
    RetireSeen,
    Sighting,
    Socket,
    Status,
)
from synclease.core.conformance_health import health_problems
from synclease.core.identity import StartStamp, same_start
from synclease.core.lease import LeaseRecord

__all__ = [
    "CLAUSES",
    "RENEW_SLACK_SECONDS",
    "RETIRE_DEADLINE_SECONDS",
    "Clause",
    "ClauseResult",
    "LeaseSample",
    "RetireMode",
    "RetireSeen",
    "Sighting",
    "Socket",
    "Status",
    "all_pass",
    "evaluate",
    "health_problems",
]

Verdict = tuple[Status, str]
_NOT_RETIRING: Verdict = (Status.NA, "run with --retire to check")


def _lease(obs: Sighting) -> LeaseRecord | None:
    return next((s.lease for s in obs.samples if s.lease is not None), None)


def _lease_schema(obs: Sighting) -> Verdict:
    if obs.no_lease:
        return Status.NA, obs.no_lease
    bad = [s.problem or "untrusted" for s in obs.samples if s.lease is None]
    if not obs.samples or bad:
        return Status.FAIL, f"untrusted read(s): {', '.join(sorted(set(bad))) or 'no sample'}"
    return Status.PASS, f"{len(obs.samples)} trusted read(s)"


def _renewals(obs: Sighting) -> list[LeaseSample]:
    """The first sample of each distinct ``renewed_at``, in order of observation."""
    firsts: list[LeaseSample] = []
    for sample in obs.samples:
        last = firsts[-1].lease if firsts else None
        if sample.lease is not None and (last is None or last.renewed_at != sample.lease.renewed_at):
            firsts.append(sample)
    return firsts


def _atomic(obs: Sighting) -> Verdict:
    if obs.no_lease:
        return Status.NA, obs.no_lease
    if any(s.lease is None for s in obs.samples):
        return Status.FAIL, "a read during renewals was not a whole trusted record"
    firsts = _renewals(obs)
    if len(firsts) < 2:
        return Status.FAIL, "no renewal seen, so no replacement to judge"
    same = [f"{b.at:%H:%M:%S}" for a, b in itertools.pairwise(firsts) if a.inode == b.inode]
    if same or any(s.inode is None for s in firsts):
        return Status.FAIL, f"renewal(s) written in place (same inode) at {', '.join(same) or '?'}"
    return Status.PASS, f"{len(firsts) - 1} renewal(s), each a new inode"


def _renew(obs: Sighting) -> Verdict:
    if obs.no_lease:
        return Status.NA, obs.no_lease
    firsts = [s.lease for s in _renewals(obs) if s.lease is not None]
    if len(firsts) < 2:
        return Status.FAIL, "renewed_at did not advance while watched"
    ttl = firsts[0].ttl_seconds
    gaps = [(b.renewed_at - a.renewed_at).total_seconds() for a, b in itertools.pairwise(firsts)]
    expired = [s for s in obs.samples if s.lease is not None and s.at > s.lease.expires_at]
    if expired:
        return Status.FAIL, f"seen expired at {expired[0].at:%H:%M:%S.%f} (ttl {ttl:g}s)"
    if max(gaps) > ttl / 3 + RENEW_SLACK_SECONDS:
        return Status.FAIL, f"renewal gap {max(gaps):.2f}s > ttl/3 ({ttl / 3:.2f}s)"
    return Status.PASS, f"gaps {min(gaps):.2f}..{max(gaps):.2f}s, ttl {ttl:g}s, never expired"


def _health_schema(obs: Sighting) -> Verdict:
    if obs.health_status != 200:
        return Status.FAIL, f"status {obs.health_status} ({obs.health_error or 'no answer'})"
    problems = health_problems(obs.health_document, obs.family)
    if problems:
        return Status.FAIL, "; ".join(problems[:6])
    return Status.PASS, "200, every required field valid, no token"


def _start_text(start: StartStamp | None) -> str:
    return "unknown" if start is None else f"{start.epoch:.2f}"


def _health_agrees(obs: Sighting) -> Verdict:
    lease, report = _lease(obs), obs.health
    if obs.no_lease:
        return Status.NA, obs.no_lease
    if lease is None or report is None:
        return Status.FAIL, "no trusted lease or no self-report to compare"
    checks: list[tuple[str, object, object]] = [
        ("instance_id", lease.instance_id, report.instance_id),
        ("scope_id", lease.scope_id, report.scope_id),
        ("daemon_root", lease.daemon_root, report.daemon_root),
        ("pid", lease.pid, report.pid),
        ("port", lease.port, report.port),
        ("package_version", lease.package_version, report.package_version),
        ("protocol_version", lease.protocol_version, report.protocol_version),
    ]
    bad = [f"{name} lease={want!r} health={got!r}" for name, want, got in checks if want != got]
    if not same_start(lease.start, report.start):
        bad.append(f"process_start_time lease={_start_text(lease.start)} health={_start_text(report.start)}")
    return (Status.FAIL, "; ".join(bad)) if bad else (Status.PASS, "all eight fields agree")


def _claimed(obs: Sighting) -> tuple[int | None, StartStamp | None]:
    lease = _lease(obs)
    if lease is not None:
        return lease.pid, lease.start
    report = obs.health
    return (None, None) if report is None else (report.pid, report.start)


def _os_agrees(obs: Sighting) -> Verdict:
    if obs.table_error:
        return Status.FAIL, f"OS listener table unreadable ({obs.table_error})"
    pids = sorted({s.pid for s in obs.sockets if s.pid is not None})
    pid, start = _claimed(obs)
    if pid is None or start is None:
        return Status.FAIL, "no pid and start time claimed by a lease or self-report"
    if pids != [pid] or any(s.pid is None for s in obs.sockets):
        return Status.FAIL, f"port {obs.port} listener pid(s) {pids or 'none'}, claimed {pid}"
    facts = obs.process
    if facts is None or not facts.exists or facts.start_time is None:
        return Status.FAIL, f"pid {pid}: start time not readable from the OS"
    if not same_start(start, facts.start):
        return Status.FAIL, f"pid {pid} started {facts.start_time:.2f}, claimed {start.epoch:.2f}"
    return Status.PASS, f"pid {pid} listens on {obs.port}, start {facts.start_time:.2f} agrees"


def _loopback(obs: Sighting) -> Verdict:
    if obs.table_error:
        return Status.FAIL, f"OS listener table unreadable ({obs.table_error})"
    addresses = sorted({s.address for s in obs.sockets})
    if not addresses:
        return Status.FAIL, f"no listener on port {obs.port} in the OS table"
    if addresses != [LOOPBACK_ADDRESS]:
        return Status.FAIL, f"bound on {', '.join(addresses)}"
    return Status.PASS, "bound on 127.0.0.1 only"


def _auth(obs: Sighting) -> Verdict:
    if obs.unauth_status is None:
        return _NOT_RETIRING
    if obs.unauth_status != 403:
        return Status.FAIL, f"status {obs.unauth_status} for POST /api/retire without a token"
    if not obs.unauth_survived:
        return Status.FAIL, "403, but the daemon stopped serving afterwards"
    return Status.PASS, "403 and still serving"


def _retire_summary(seen: RetireSeen) -> str:
    gone = [
        name
        for name, ok in (
            ("lease", seen.lease_gone),
            ("process", seen.process_gone),
            ("port", seen.port_closed),
        )
        if not ok
    ]
    if gone:
        return f"after {seen.seconds:.2f}s still present: {', '.join(gone)}"
    return f"lease, process and port gone in {seen.seconds:.2f}s (deadline {seen.deadline:g}s)"


def _retire_clause(obs: Sighting, mode: RetireMode) -> Verdict:
    seen = obs.retire
    if seen is None:
        return _NOT_RETIRING
    if seen.mode != mode:
        return Status.NA, f"this run retired the daemon by {seen.mode}; run again with --retire-by {mode}"
    if seen.skipped:
        return Status.NA, seen.skipped
    if mode == "request" and seen.status != 202:
        return Status.FAIL, f"status {seen.status} for POST /api/retire with the token"
    ok = seen.lease_gone and seen.process_gone and seen.port_closed and seen.seconds <= seen.deadline
    return (Status.PASS if ok else Status.FAIL), _retire_summary(seen)


def _drain(obs: Sighting) -> Verdict:
    seen = obs.retire
    if seen is None:
        return _NOT_RETIRING
    if not seen.in_flight_at_start:
        return Status.NA, "no work in flight when retirement was asked"
    if seen.seen_working_after:
        return Status.PASS, "kept serving while in_flight after the request, then retired"
    if seen.answered_after:
        return Status.NA, "its work ended before the first self-report after the request"
    return Status.FAIL, "stopped answering at once although its last self-report said in_flight"


_RULES: dict[str, Callable[[Sighting], Verdict]] = {
    "L1.LEASE.SCHEMA": _lease_schema,
    "L1.WRITE.ATOMIC": _atomic,
    "L1.LEASE.RENEW": _renew,
    "L1.HEALTH.SCHEMA": _health_schema,
    "L1.HEALTH.AGREES": _health_agrees,
    "L1.OS.AGREES": _os_agrees,
    "L1.BIND.LOOPBACK": _loopback,
    "L1.CONTROL.AUTH": _auth,
    "L1.CONTROL.RETIRE": lambda obs: _retire_clause(obs, "request"),
    "L1.RETIRE.DRAIN": _drain,
    "L1.SINGLETON.SUPERSEDE": lambda obs: _retire_clause(obs, "superseded"),
}


def evaluate(obs: Sighting, clauses: Sequence[Clause] = CLAUSES) -> tuple[ClauseResult, ...]:
    """Every clause's verdict on ``obs``; every clause is required when it applies (n/a never fails)."""
    results = []
    for clause in clauses:
        status, seen = _RULES[clause.id](obs)
        results.append(ClauseResult(clause.id, clause.title, status, seen))
    return tuple(results)


def all_pass(results: Sequence[ClauseResult]) -> bool:
    return not any(result.failed for result in results)
