"""The doctor's view as OpenMetrics text, for Prometheus node_exporter's textfile collector.

One pure function, :func:`render`, from what the doctor already read. Every label value comes from a
closed set (cleanup classes, skip reasons, ledger reasons, finding ids, queue kinds, the package
version): no token, path, root, scope or principal ever becomes a label. Names follow Prometheus's
conventions: ``synclease_`` prefix, base units (seconds), ``_total`` on counters, ``# EOF`` last.

The ``*_total`` counters count what the ledger remembers. The ledger is bounded, so a counter can
fall when old lines rotate out; Prometheus reads a fall as a counter reset, which is what it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from synclease.core.fleet import CleanupClass, Survey
from synclease.core.history_report import History
from synclease.core.ledger import EventKind
from synclease.core.queue_state import QueueFacts
from synclease.core.record import record
from synclease.core.report import DoctorView, every_finding, singleton_health

CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

Labels = tuple[tuple[str, str], ...]

#: Ledger event kinds counted, and the counter each one feeds.
_ENDINGS = (
    (EventKind.RETIRED, "synclease_retirements", "Daemons that retired themselves, by reason (ledger)."),
    (EventKind.REAPED, "synclease_reaps", "Daemons the reaper stopped, by reason (ledger)."),
    (EventKind.VANISHED, "synclease_vanished", "Daemons that died without retiring, by reason (ledger)."),
)


@record
class _Family:
    name: str
    kind: str
    help: str
    unit: str | None
    samples: tuple[tuple[str, Labels, float], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(round(value, 6))


def _text(families: Iterable[_Family]) -> str:
    lines: list[str] = []
    for fam in families:
        lines.append(f"# TYPE {fam.name} {fam.kind}")
        if fam.unit:
            lines.append(f"# UNIT {fam.name} {fam.unit}")
        lines.append(f"# HELP {fam.name} {_escape(fam.help)}")
        for name, labels, value in fam.samples:
            inner = ",".join(f'{key}="{_escape(val)}"' for key, val in labels)
            lines.append(f"{name}{{{inner}}} {_number(value)}" if inner else f"{name} {_number(value)}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _gauge(
    name: str, help_text: str, samples: Iterable[tuple[Labels, float]], unit: str | None = None
) -> _Family:
    return _Family(name, "gauge", help_text, unit, tuple((name, labels, value) for labels, value in samples))


def _daemons(survey: Survey) -> _Family:
    counts = Counter(
        (r.cleanup_class.value, "" if r.skip_reason is None else r.skip_reason.value) for r in survey.records
    )
    for cls in CleanupClass:  # every class has a row, so "safe_auto == 0" needs no absent()
        if not any(key[0] == cls.value for key in counts):
            counts[(cls.value, "")] = 0
    rows = sorted(counts.items())
    return _gauge(
        "synclease_daemons",
        "Listeners in the sync port range, by cleanup class and skip reason (empty when safe_auto).",
        [((("cleanup_class", cls), ("skip_reason", reason)), n) for (cls, reason), n in rows],
    )


def _singleton(view: DoctorView) -> list[_Family]:
    single = view.survey.singleton
    health = singleton_health(view.survey)
    last_upload = None if health is None else health.last_sync
    out = [
        _gauge(
            "synclease_singleton_up",
            "1 when a recorded singleton answers for this root.",
            [((), 1 if single else 0)],
        )
    ]
    if single is not None and single.lease_renewed_at is not None:
        age = max(0.0, (view.generated_at - single.lease_renewed_at).total_seconds())
        out.append(
            _gauge(
                "synclease_singleton_lease_age_seconds",
                "Seconds since the singleton last renewed its lease.",
                [((), age)],
                unit="seconds",
            )
        )
    if last_upload is not None:
        since = max(0.0, (view.generated_at - last_upload).total_seconds())
        out.append(
            _gauge(
                "synclease_last_upload_age_seconds",
                "Seconds since the singleton last delivered a batch to the server.",
                [((), since)],
                unit="seconds",
            )
        )
    return out


def _queues(queues: Sequence[QueueFacts]) -> list[_Family]:
    depth: Counter[str] = Counter()
    dead: Counter[str] = Counter()
    unusable: Counter[str] = Counter()
    for facts in queues:
        if facts.counts is None:
            unusable[facts.queue] += 1
            continue
        depth[facts.queue] += facts.counts.depth
        dead[facts.queue] += facts.counts.dead_letters
    return [
        _gauge(
            "synclease_queue_depth",
            "Events waiting in this login's queue databases.",
            [((("queue", q),), n) for q, n in sorted(depth.items())],
        ),
        _gauge(
            "synclease_queue_dead_letters",
            "Events the server refused for good (sync dead-letter lists them).",
            [((("queue", q),), n) for q, n in sorted(dead.items())],
        ),
        _gauge(
            "synclease_queue_unusable",
            "Queue databases that cannot be read (auth doctor names them).",
            [((("queue", q),), n) for q, n in sorted(unusable.items())],
        ),
    ]


def _endings(history: History) -> list[_Family]:
    out = []
    for kind, name, help_text in _ENDINGS:
        counts = Counter("" if e.reason is None else e.reason.value for e in history.events if e.kind is kind)
        samples = tuple((f"{name}_total", (("reason", r),), float(n)) for r, n in sorted(counts.items()))
        out.append(_Family(name, "counter", help_text, None, samples))
    return out


def render(view: DoctorView, *, version: str) -> str:
    """The OpenMetrics exposition of what the doctor document says of ``view``, ``# EOF`` terminated;
    ``version`` is the writer's (``synclease_build_info``)."""
    survey = view.survey
    findings = Counter((str(f["id"]), str(f["severity"])) for f in every_finding(view))
    families = [
        _gauge("synclease_build_info", "The synclease that wrote this file.", [((("version", version),), 1)]),
        _daemons(survey),
        *_singleton(view),
        *_queues(view.queues),
        *_endings(view.history),
        _gauge(
            "synclease_findings",
            "Doctor findings, by id and severity.",
            [((("id", fid), ("severity", sev)), n) for (fid, sev), n in sorted(findings.items())],
        ),
        _gauge(
            "synclease_scan_duration_seconds",
            "How long the doctor's scan of the port range took.",
            [((), survey.scan.duration_ms / 1000.0)],
            unit="seconds",
        ),
        _gauge("synclease_scan_ports", "Ports the scan covered.", [((), survey.scan.ports_scanned)]),
    ]
    return _text(families)
