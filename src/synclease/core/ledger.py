"""Ledger v1 events: why each sync daemon started, retired, was reaped or vanished.

One :class:`LedgerEvent` is one line of ``<root>/ledger/sync.jsonl``; the normative spec is
``protocol/ledger-v1.md``. Building an event checks every closed form (enums, ids, pids, ports, error
codes, ``by.command``): a bad one is a ``ValueError``, a bug in the caller. Free text is cut to its
limits instead: the package version, and the log tail (its last :data:`LOG_TAIL_LINES` lines, each cut
to :data:`MAX_LOG_LINE_CHARS`, control characters replaced). The line format is
:mod:`synclease.core.ledger_codec`, the file :mod:`synclease.adapters.ledger_store`, the questions
asked of events :mod:`synclease.core.ledger_queries`.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from pathlib import Path

from synclease.core.actor import Actor
from synclease.core.codec import MAX_PID, MAX_YEAR, MIN_YEAR, as_float, as_int, as_text
from synclease.core.constants import SYNC_PORT_RANGE
from synclease.core.escalate import CleanupPath
from synclease.core.lease import INSTANCE_ID_RE
from synclease.core.reasons import LedgerReason
from synclease.core.record import field, record

LEDGER_SCHEMA = "synclease.ledger"
LEDGER_SCHEMA_VERSION = 1
#: An encoded event, its newline included, is at most this long; a longer line is refused by readers.
MAX_LINE_BYTES = 4096
#: An append that would take the ledger past this size rotates it first (one older file is kept).
MAX_FILE_BYTES = 1024 * 1024
LOG_TAIL_LINES = 20
#: ``evidence.daemon_root``: the root a reaped daemon belonged to, when not the ledger's own.
MAX_ROOT_CHARS = 1024
MAX_LOG_LINE_CHARS = 200
MAX_VERSION_CHARS = 64
MAX_IDLE_SECONDS = 1e9
MAX_QUEUE_DEPTH = 10**12
MAX_GENERATION = 2**62
ERROR_CODE_RE = re.compile(r"\A[A-Za-z0-9_.:-]{1,64}\Z")
#: What a log line may not hold: C0/C1 controls (tab excepted), DEL, lone surrogates.
_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


class EventKind(enum.StrEnum):
    SPAWNED = "spawned"
    SERVING = "serving"
    RETIRED = "retired"
    REAPED = "reaped"
    VANISHED = "vanished"
    LEASE_REMOVED = "lease_removed"
    START_FAILED = "start_failed"


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(f"ledger event: bad {what}")


def clean_log_line(line: str) -> str:
    """A log line as the ledger keeps it: cut to :data:`MAX_LOG_LINE_CHARS`, unprintables replaced."""
    return _UNPRINTABLE.sub(_REPLACEMENT, line[:MAX_LOG_LINE_CHARS])


def log_lines(text: str) -> tuple[str, ...]:
    """A daemon log's text (``adapters.log_files.log_tail``) as the lines :class:`EventEvidence` keeps."""
    return tuple(text.splitlines())


@record(kw_only=True)
class EventEvidence:
    """What backs a reason; every field optional. ``log_tail`` (for ``vanished``/``start_failed``)
    keeps the last :data:`LOG_TAIL_LINES` lines, each cut to :data:`MAX_LOG_LINE_CHARS` with control
    characters replaced; ``log_truncated`` says lines were dropped or cut (here, or by the encoder to
    fit the line bound)."""

    idle_seconds: float | None = None
    superseded_by: str | None = None
    superseded_generation: int | None = None
    queue_depth: int | None = None
    cleanup_path: CleanupPath | None = None
    error_code: str | None = None
    log_tail: tuple[str, ...] | None = None
    log_truncated: bool = False
    #: The daemon's own root when it is not this ledger's (a sweep reaped a daemon of another root).
    daemon_root: str | None = None

    def __post_init__(self) -> None:
        _check(
            self.idle_seconds is None or as_float(self.idle_seconds, 0, MAX_IDLE_SECONDS) is not None, "idle"
        )
        _check(self.superseded_by is None or is_instance_id(self.superseded_by), "superseded_by")
        gen = self.superseded_generation
        _check(gen is None or as_int(gen, 1, MAX_GENERATION) is not None, "superseded_generation")
        _check(self.queue_depth is None or as_int(self.queue_depth, 0, MAX_QUEUE_DEPTH) is not None, "depth")
        _check(self.cleanup_path is None or isinstance(self.cleanup_path, CleanupPath), "cleanup_path")
        _check(self.error_code is None or matches(ERROR_CODE_RE, self.error_code), "error_code")
        _check(isinstance(self.log_truncated, bool), "log_truncated")
        root = self.daemon_root
        _check(
            root is None or (as_text(root, MAX_ROOT_CHARS) is not None and is_printable(root)), "daemon_root"
        )
        if self.log_tail is not None:
            _check(isinstance(self.log_tail, tuple), "log_tail")
            _check(all(isinstance(line, str) for line in self.log_tail), "log_tail")
            tail = self.log_tail
            cut = len(tail) > LOG_TAIL_LINES or any(len(line) > MAX_LOG_LINE_CHARS for line in tail)
            object.__setattr__(
                self, "log_tail", tuple(clean_log_line(line) for line in tail[-LOG_TAIL_LINES:])
            )
            object.__setattr__(self, "log_truncated", self.log_truncated or cut)


@record(kw_only=True)
class LedgerEvent:
    """One ledger line. ``instance_id``, ``pid``, ``port``, ``package_version`` are None where unknown
    (a start that failed before binding); ``reason`` None where none applies."""

    at: datetime
    kind: EventKind
    instance_id: str | None
    pid: int | None
    port: int | None
    package_version: str | None
    reason: LedgerReason | None = None
    by: Actor | None = None
    evidence: EventEvidence = field(default_factory=EventEvidence)

    def __post_init__(self) -> None:
        at = self.at
        _check(
            isinstance(at, datetime) and at.utcoffset() is not None and MIN_YEAR <= at.year <= MAX_YEAR, "at"
        )
        _check(isinstance(self.kind, EventKind), "event")
        _check(self.instance_id is None or is_instance_id(self.instance_id), "instance_id")
        _check(self.pid is None or as_int(self.pid, 1, MAX_PID) is not None, "pid")
        port_range = SYNC_PORT_RANGE
        _check(
            self.port is None or as_int(self.port, port_range.start, port_range.stop - 1) is not None, "port"
        )
        _check(self.reason is None or isinstance(self.reason, LedgerReason), "reason")
        _check(self.by is None or isinstance(self.by, Actor), "by")
        _check(isinstance(self.evidence, EventEvidence), "evidence")
        if self.package_version is not None:
            version = self.package_version
            _check(isinstance(version, str) and as_text(version, len(version)) is not None, "package_version")
            object.__setattr__(self, "package_version", version[:MAX_VERSION_CHARS])


@record
class LedgerProblem:
    """A ledger file that was refused or only partly read (``symlink``, ``too_large``, ...)."""

    path: Path
    reason: str
    detail: str = ""


@record
class LedgerRead:
    """What a reader got: valid events in append order (oldest first), the count of lines it
    skipped, and the files it refused or cut (never followed, never trusted)."""

    events: tuple[LedgerEvent, ...] = ()
    skipped: int = 0
    problems: tuple[LedgerProblem, ...] = ()


def matches(pattern: re.Pattern[str], value: object) -> bool:
    """``value`` is a string matching ``pattern`` (patterns here are anchored with ``\\A...\\Z``)."""
    return isinstance(value, str) and pattern.match(value) is not None


def is_printable(text: str) -> bool:
    """No control character (tab included), DEL or lone surrogate."""
    return "\t" not in text and _UNPRINTABLE.search(text) is None


def is_instance_id(value: object) -> bool:
    return matches(INSTANCE_ID_RE, value)
