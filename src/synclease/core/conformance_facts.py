"""What ``protocol check`` sees of a daemon from outside (:class:`Sighting`), the clauses of lease-v1 it
judges, and a verdict's shape. Pure data; the rules are in :mod:`synclease.core.conformance`."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from synclease.core.health import HealthReport
from synclease.core.identity import ProcessFacts
from synclease.core.lease import LeaseRecord
from synclease.core.record import record

#: lease-v1 L1.CONTROL.RETIRE: an idle daemon completes retirement this long after accepting a request.
RETIRE_DEADLINE_SECONDS = 10.0
#: Scheduling slack allowed on top of the ttl/3 renewal interval (a loaded machine is late, not dead).
RENEW_SLACK_SECONDS = 1.0
LOOPBACK_ADDRESS = "127.0.0.1"
RetireMode = Literal["request", "superseded"]


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    FAIL = "fail"
    NA = "n/a"


@record
class Clause:
    id: str
    title: str


CLAUSES: tuple[Clause, ...] = (
    Clause("L1.LEASE.SCHEMA", "the lease file is a trusted lease-v1 record"),
    Clause("L1.WRITE.ATOMIC", "each renewal replaces the lease file by rename; no partial read"),
    Clause("L1.LEASE.RENEW", "renewed at least every ttl/3 and never seen expired"),
    Clause("L1.HEALTH.SCHEMA", "GET /api/health answers 200 with a health-v1 document"),
    Clause("L1.HEALTH.AGREES", "the self-report agrees with the lease"),
    Clause("L1.OS.AGREES", "the OS listener on the port is the reported pid with the reported start time"),
    Clause("L1.BIND.LOOPBACK", "the port is bound on 127.0.0.1 only"),
    Clause("L1.CONTROL.AUTH", "a control request without the token is refused with 403 and changes nothing"),
    Clause("L1.CONTROL.RETIRE", "a retire request is accepted and the daemon is gone within the deadline"),
    Clause("L1.RETIRE.DRAIN", "a daemon reporting work in flight does not exit before that work ends"),
    Clause("L1.SINGLETON.SUPERSEDE", "a higher generation naming another instance makes the daemon retire"),
)


@record
class ClauseResult:
    id: str
    title: str
    status: Status
    seen: str

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL


@record
class LeaseSample:
    """One read of the lease file: ``lease`` when trusted, else ``problem``; ``inode`` of the entry."""

    at: datetime
    lease: LeaseRecord | None
    problem: str | None
    inode: int | None


@record
class Socket:
    address: str
    pid: int | None


@record
class RetireSeen:
    """What one retire attempt showed (``skipped``: why it was not attempted)."""

    mode: RetireMode
    skipped: str | None = None
    status: int | None = None
    in_flight_at_start: bool = False
    #: Self-reports that answered after the request, and whether one of them still said in_flight.
    answered_after: int = 0
    seen_working_after: bool = False
    lease_gone: bool = False
    process_gone: bool = False
    port_closed: bool = False
    seconds: float = 0.0
    deadline: float = RETIRE_DEADLINE_SECONDS


@record(kw_only=True)
class Sighting:
    family: str
    port: int
    #: Why the family has no lease-v1 record to check (None: it has, see ``samples``).
    no_lease: str | None = None
    samples: tuple[LeaseSample, ...] = ()
    health_status: int | None = None
    health_error: str | None = None
    health_document: object = None
    health: HealthReport | None = None
    sockets: tuple[Socket, ...] = ()
    table_error: str | None = None
    process: ProcessFacts | None = None
    #: Status of an unauthenticated ``POST /api/retire`` and whether the daemon still served after it.
    unauth_status: int | None = None
    unauth_survived: bool = False
    retire: RetireSeen | None = None
