"""``synclease auth doctor --format openmetrics [--output PATH]`` (issue 13): the doctor's view for
Prometheus node_exporter's textfile collector, parsed here with ``prometheus_client``'s own parser.

The pure renderer is checked on a hand-built survey; the command is checked live on a fleet of one
healthy singleton and one stale orphan of another version, before and after ``--reset``.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from synclease.core.classify import classify_all
from synclease.core.fleet import ScanResult, Survey
from synclease.core.history_report import History
from synclease.core.ledger import EventKind, LedgerEvent
from synclease.core.openmetrics import render
from synclease.core.queue_state import QueueCounts, QueueFacts
from synclease.core.reasons import LedgerReason
from synclease.core.report import DoctorView, SessionSummary
from tests.conftest import Sandbox, pid_alive
from tests.test_classify import (
    NOW,
    ROOT,
    SCOPE,
    entry_of,
    make_ctx,
    make_lease,
    make_obs,
    make_report,
    singleton_of,
)
from tests.test_reaper_live import STALE, doctor, serving, spawn, stale_daemon, wait_expired

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """``{family: type}`` and ``{(sample name, sorted labels): value}``, via prometheus_client."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            assert isinstance(s, Sample)
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def _fleet() -> Survey:
    """One stale orphan (safe_auto), one live recorded singleton, one third-party listener."""
    orphan = make_lease()
    single = make_lease(
        instance_id="inst-single-0001", pid=5151, port=9408, package_version="3.2.5", renewed_at=NOW
    )
    ctx = make_ctx(entry_of(orphan), entry_of(single), singleton=singleton_of("inst-single-0001", 5151, 9408))
    observations = (
        make_obs(make_report()),
        make_obs(
            make_report(
                instance_id="inst-single-0001",
                pid=5151,
                port=9408,
                package_version="3.2.5",
                last_sync=NOW - timedelta(seconds=42),
            ),
            port=9408,
            pid=5151,
        ),
        make_obs(None, port=9409, pid=777, error="not_json"),
    )
    scan = ScanResult(observations, ports_scanned=50, duration_ms=12.5)
    return Survey(ctx, scan, tuple(classify_all(observations, ctx)), ())


def _view(**changes: object) -> DoctorView:
    found = _fleet()

    def ended(kind: EventKind, reason: LedgerReason | None, n: int) -> LedgerEvent:
        return LedgerEvent(
            at=NOW,
            kind=kind,
            instance_id=f"inst-{n:012d}",
            pid=4000 + n,
            port=9410,
            package_version="3.2.4",
            reason=reason,
        )

    events = (
        ended(EventKind.RETIRED, LedgerReason.IDLE, 1),
        ended(EventKind.RETIRED, LedgerReason.IDLE, 2),
        ended(EventKind.RETIRED, LedgerReason.SUPERSEDED, 3),
        ended(EventKind.REAPED, LedgerReason.EXPIRED_LEASE, 4),
        ended(EventKind.SERVING, None, 5),
    )
    base: dict[str, object] = {
        "survey": found,
        "generated_at": NOW,
        "queues": (
            QueueFacts(Path(f"{ROOT}/queue/events.db"), "scope", QueueCounts(depth=7, dead_letters=2)),
            QueueFacts(Path(f"{ROOT}/queue/local.db"), "local", problem="not_a_database"),
        ),
        "history": History(events),
        "session": SessionSummary("https://sync.example.test", "alice", None, "user:dev"),
    }
    base.update(changes)
    return DoctorView(**base)  # type: ignore[arg-type]


def test_the_fleet_in_openmetrics_parses_and_says_what_the_doctor_says() -> None:
    text = render(_view(), version="0.1.0")
    assert text.endswith("# EOF\n")
    types, samples = parse(text)
    assert types["synclease_daemons"] == "gauge" and types["synclease_retirements"] == "counter"
    assert value(samples, "synclease_daemons", cleanup_class="safe_auto", skip_reason="") == 1
    assert (
        value(samples, "synclease_daemons", cleanup_class="never_touch", skip_reason="recorded_singleton")
        == 1
    )
    assert value(samples, "synclease_daemons", cleanup_class="never_touch", skip_reason="third_party") == 1
    assert value(samples, "synclease_daemons", cleanup_class="operator_required", skip_reason="") == 0
    assert value(samples, "synclease_singleton_up") == 1
    assert value(samples, "synclease_singleton_lease_age_seconds") == 0
    assert value(samples, "synclease_last_upload_age_seconds") == 42
    assert value(samples, "synclease_queue_depth", queue="scope") == 7
    assert value(samples, "synclease_queue_dead_letters", queue="scope") == 2
    assert value(samples, "synclease_queue_unusable", queue="local") == 1
    assert value(samples, "synclease_retirements_total", reason="idle") == 2
    assert value(samples, "synclease_retirements_total", reason="superseded") == 1
    assert value(samples, "synclease_reaps_total", reason="expired_lease") == 1
    assert value(samples, "synclease_findings", id="orphans_safe_auto", severity="warning") == 1
    assert value(samples, "synclease_scan_duration_seconds") == 0.0125
    assert value(samples, "synclease_scan_ports") == 50
    assert value(samples, "synclease_build_info", version="0.1.0") == 1


def test_no_token_path_root_scope_or_principal_is_ever_a_label_or_a_value() -> None:
    text = render(_view(), version="0.1.0")
    for secret in ("t" * 32, ROOT, SCOPE, "user:dev", "sync.example.test", "events.db", "inst-"):
        assert secret not in text
    label_names = set(re.findall(r"[{,]([a-z_]+)=", text))
    assert label_names <= {"cleanup_class", "skip_reason", "queue", "reason", "id", "severity", "version"}


def test_names_follow_prometheus_conventions() -> None:
    types, samples = parse(render(_view(), version="0.1.0"))
    for name, kind in types.items():
        assert re.fullmatch(r"synclease_[a-z_]+", name)
        if kind == "counter":
            assert all(s.endswith("_total") for s, _ in samples if s.startswith(name + "_"))
    assert all(n.endswith("_seconds") for n in types if "age" in n or "duration" in n)


def test_without_a_singleton_or_an_upload_the_ages_are_absent_not_zero() -> None:
    found = _fleet()
    lonely = Survey(found.ctx, found.scan, tuple(r for r in found.records if not r.is_recorded_singleton), ())
    _, samples = parse(render(_view(survey=lonely, history=History()), version="0.1.0"))
    assert value(samples, "synclease_singleton_up") == 0
    assert value(samples, "synclease_singleton_lease_age_seconds") is None
    assert value(samples, "synclease_last_upload_age_seconds") is None
    assert not any(name == "synclease_retirements_total" for name, _ in samples)


# --- live ------------------------------------------------------------------------------------------


@pytest.mark.live
def test_doctor_writes_the_fleet_for_the_textfile_collector(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    box = sandbox_factory(size=6)
    singleton = spawn(box, "--replace")
    serving(box, singleton)
    orphan, lease = stale_daemon(box, "--managed", env={**STALE, "SYNCLEASE_VERSION": "3.2.4"})
    wait_expired(box, lease)

    collector = tmp_path / "textfile"
    collector.mkdir()
    target = collector / "synclease.prom"
    proc = box.cli("auth", "doctor", "--format", "openmetrics", "--output", str(target))
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", proc.stderr
    assert os.listdir(collector) == ["synclease.prom"]  # the temp file was renamed, none left
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # node_exporter reads it as another user
    text = target.read_text()
    assert str(box.root) not in text and lease["token"] not in text and lease["instance_id"] not in text
    _, samples = parse(text)
    assert value(samples, "synclease_daemons", cleanup_class="safe_auto", skip_reason="") == 1
    assert (
        value(samples, "synclease_daemons", cleanup_class="never_touch", skip_reason="recorded_singleton")
        == 1
    )
    assert value(samples, "synclease_singleton_up") == 1
    age = value(samples, "synclease_singleton_lease_age_seconds")
    assert age is not None and 0 <= age < 10
    assert value(samples, "synclease_findings", id="orphans_safe_auto", severity="warning") == 1
    assert value(samples, "synclease_scan_ports") == 6

    # Without --output it is stdout, the same families.
    stdout = box.cli("auth", "doctor", "--format", "openmetrics")
    assert stdout.returncode == 0 and set(parse(stdout.stdout)[0]) == set(parse(text)[0])

    # After the reset the ledger's reap shows as a counter, and the orphan is gone from the gauges.
    doctor(box, "--reset")
    assert not pid_alive(orphan.pid)
    proc = box.cli("auth", "doctor", "--format", "openmetrics", "--output", str(target))
    assert proc.returncode == 0, proc.stderr
    _, after = parse(target.read_text())
    assert value(after, "synclease_daemons", cleanup_class="safe_auto", skip_reason="") == 0
    assert sum(v for (name, _), v in after.items() if name == "synclease_reaps_total") == 1
    assert os.listdir(collector) == ["synclease.prom"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "--format", "openmetrics"], "--json and --format openmetrics ask for two formats"),
        (["--output", "{dir}"], "--output writes a machine format"),
        (["--format", "openmetrics", "--output", "{dir}"], "is a directory"),
        (["--format", "openmetrics", "--output", "{dir}/missing/x.prom"], "does not exist"),
    ],
)
def test_bad_format_or_output_is_one_clear_line(
    sandbox: Sandbox, tmp_path: Path, args: list[str], message: str
) -> None:
    proc = sandbox.cli("auth", "doctor", *(a.replace("{dir}", str(tmp_path)) for a in args))
    assert proc.returncode == 2 and proc.stdout == ""
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
