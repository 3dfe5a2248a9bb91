"""Named constants of the protocol and the two daemon families."""

from __future__ import annotations

from typing import Final, Literal

Family = Literal["sync", "dashboard"]
SYNC: Final = "sync"
DASHBOARD: Final = "dashboard"

#: Half-open port ranges ``[start, stop)`` of the built-in families (declared in ``core/family.py``).
SYNC_PORT_RANGE: Final = range(9400, 9450)
DASHBOARD_PORT_RANGE: Final = range(9237, 9337)

LOOPBACK: Final = "127.0.0.1"

#: The commands the doctor's and explain's remedies name.
RESET: Final = "synclease auth doctor --reset"
RESET_FORCE: Final = "synclease auth doctor --reset --force"

#: Wire protocol spoken by daemons and CLIs (lease files, /api/health, control endpoints).
PROTOCOL_VERSION: Final = 1
#: Schema version of the lease and singleton records on disk.
LEASE_SCHEMA_VERSION: Final = 1
LEASE_SCHEMA: Final = "synclease.lease"
SINGLETON_SCHEMA: Final = "synclease.singleton"
#: Lease and singleton files larger than this are hostile, not parsed.
MAX_RECORD_BYTES: Final = 64 * 1024

#: How often a daemon renews its lease and runs its governor.
HEARTBEAT_SECONDS: Final = 2.0
#: A lease is expired once ``now > renewed_at + ttl``; several heartbeats, so one slow tick is no death.
LEASE_TTL_SECONDS: Final = 10.0
#: A daemon with no work and no real requests for this long retires by itself.
SYNC_DAEMON_IDLE_RETIREMENT_SECONDS: Final = 15 * 60.0

#: An idle daemon whose resident memory passes this many MiB retires (``SYNCLEASE_MAX_RSS_MB``).
MAX_RSS_MB: Final = 256.0
#: ``work_stalled``: events wait and nothing was uploaded for this long (``SYNCLEASE_STALL_SECONDS``).
STALL_SECONDS: Final = 3600.0

#: Process start times are compared with this tolerance (seconds); psutil derives them from clock ticks.
START_TIME_TOLERANCE_SECONDS: Final = 0.05

#: The one bound on a ``/api/health`` exchange, whoever asks (probe, ensure, status, spawn waits).
HEALTH_TIMEOUT_SECONDS: Final = 0.5
#: The one bound on a polite ``POST /api/retire`` (or the dashboard's ``/api/shutdown``).
RETIRE_REQUEST_TIMEOUT_SECONDS: Final = 1.0
#: Request and response bodies on the control planes are at most this large.
MAX_BODY_BYTES: Final = 64 * 1024
