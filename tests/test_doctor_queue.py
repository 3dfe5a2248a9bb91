"""The doctor's ``queue`` section and its three findings: the pure document against
``protocol/doctor-v2.schema.json``, and the service reading real queue files of a temporary root
read-only (nothing created, nothing migrated)."""

from __future__ import annotations

import logging
import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from synclease.adapters.queue import EventQueue, queue_path
from synclease.adapters.root import DaemonRoot
from synclease.adapters.session_store import save_session
from synclease.core.errors import SyncleaseError
from synclease.core.queue_state import QueueCounts, QueueFacts
from synclease.core.report import DoctorView, SessionSummary, build
from synclease.core.session import new_session
from synclease.daemons.sync.wiring import build_work
from synclease.services.doctor import queue_facts
from tests.clocks import FakeClock
from tests.test_classify import NOW, make_ctx
from tests.test_doctor_schema import SESSION, _with, errors, pile, survey_of

SCOPED = Path("/root/x/queue/0123456789abcdef.sqlite3")
LOCAL = Path("/root/x/queue/fedcba9876543210.sqlite3")


def facts() -> list[QueueFacts]:
    return [
        QueueFacts(SCOPED, "scope", counts=QueueCounts(12, 3), schema_version=2),
        QueueFacts(LOCAL, "local", problem="not_a_queue_database", detail="file is not a database"),
    ]


def finding_map(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in doc["findings"]}


def test_a_document_with_queue_facts_validates_and_carries_both_findings() -> None:
    doc = build(DoctorView(survey=pile(), generated_at=NOW, session=SESSION, queues=facts()))
    assert errors(doc) == []
    assert doc["queue"] == {
        "depth": 12,
        "dead_letters": 3,
        "databases": [
            {"path": str(SCOPED), "queue": "scope", "schema_version": 2, "depth": 12, "dead_letters": 3},
            {
                "path": str(LOCAL),
                "queue": "local",
                "problem": "not_a_queue_database",
                "detail": "file is not a database",
            },
        ],
    }
    found = finding_map(doc)
    assert found["dead_letter"]["summary"].startswith("3 event(s) were dead-lettered")
    assert found["dead_letter"]["remediation"]["command"] == "synclease sync dead-letter"
    assert found["queue_unusable"]["severity"] == "error"
    assert found["queue_unusable"]["remediation"]["command"] == f"synclease sync move-aside {LOCAL}"


def test_without_queues_the_section_is_empty_and_there_are_no_queue_findings() -> None:
    doc = build(DoctorView(survey=survey_of(make_ctx()), generated_at=NOW, session=None))
    assert errors(doc) == []
    assert doc["queue"] == {"depth": 0, "dead_letters": 0, "databases": []}
    assert {"dead_letter", "queue_unusable"}.isdisjoint(finding_map(doc))


@pytest.mark.parametrize(
    ("problem", "command"),
    [
        ("not_a_queue_database", "synclease sync move-aside {path}"),
        ("unknown_version", "synclease sync move-aside {path}"),
        ("symlink", "synclease sync move-aside {path}"),
        ("insecure_mode", "chmod 600 -- {path}"),
        ("unsafe_directory", "chmod 700 -- {dir}"),
    ],
)
def test_each_problem_has_one_command_that_never_deletes(problem: str, command: str) -> None:
    odd = Path("/tmp/it's here/queue/0123456789abcdef.sqlite3")
    doc = build(
        DoctorView(
            survey=pile(), generated_at=NOW, session=None, queues=[QueueFacts(odd, "local", problem=problem)]
        )
    )
    assert errors(doc) == []
    expected = command.format(path=shlex.quote(str(odd)), dir=shlex.quote(str(odd.parent)))
    assert finding_map(doc)["queue_unusable"]["remediation"]["command"] == expected
    assert "rm " not in expected


def test_a_busy_database_is_shown_but_not_a_finding() -> None:
    doc = build(
        DoctorView(
            survey=pile(), generated_at=NOW, session=None, queues=[QueueFacts(LOCAL, "local", problem="busy")]
        )
    )
    assert errors(doc) == []
    assert "queue_unusable" not in finding_map(doc)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["queue", "extra"], 1),
        (["queue", "depth"], -1),
        (["queue", "databases", 0, "queue"], "other"),
        (["queue", "databases", 0, "token"], "s3cret"),
        (["queue", "databases", 0, "schema_version"], 3),
        (["queue", "databases", 1, "problem"], ""),
        (["queue", "databases", 1, "depth"], 0),
    ],
)
def test_the_queue_section_is_closed(path: list[Any], value: Any) -> None:
    doc = build(DoctorView(survey=pile(), generated_at=NOW, session=SESSION, queues=facts()))
    assert errors(_with(doc, path, value)) != []


# --- the service, on real files -------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> DaemonRoot:
    return DaemonRoot(tmp_path / "root").prepare()


def tree(root: DaemonRoot) -> set[str]:
    return {str(p.relative_to(root.path)) for p in root.path.rglob("*")}


def test_queue_facts_reads_the_scope_and_local_queues_without_creating_any(root: DaemonRoot) -> None:
    clock = FakeClock()
    session = new_session("https://sync.example.test", "tok-SECRET-doctor", "alice", None, NOW)
    before = tree(root)
    assert queue_facts(root, session) == [] and queue_facts(root, None) == []
    assert tree(root) == before  # no database created for a look
    with EventQueue(queue_path(root, session.auth_scope), clock) as scoped:
        scoped.enqueue_many([("t", n) for n in range(4)])
        [event] = scoped.claim_batch("inst", 1, 30)
        scoped.dead_letter("inst", event.id, 422, "HTTP 422 Unprocessable Entity")
    local = queue_path(root, None)
    fd = os.open(local, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"\x00garbage" * 512)
    os.close(fd)
    before = tree(root)
    got = queue_facts(root, session)
    assert tree(root) == before
    assert [(f.queue, f.counts, f.problem) for f in got] == [
        ("scope", QueueCounts(3, 1), None),
        ("local", None, "not_a_queue_database"),
    ]
    # Logged out, only the local-only queue is this login's.
    assert [f.queue for f in queue_facts(root, None)] == ["local"]


def test_queue_facts_of_a_missing_root_creates_nothing(tmp_path: Path) -> None:
    root = DaemonRoot(tmp_path / "nowhere")
    assert queue_facts(root, None) == []
    assert not root.path.exists()


def test_events_left_in_the_local_queue_after_login_are_a_finding() -> None:
    waiting = [
        QueueFacts(SCOPED, "scope", counts=QueueCounts(0, 0), schema_version=2),
        QueueFacts(LOCAL, "local", counts=QueueCounts(5, 0), schema_version=2),
    ]
    doc = build(DoctorView(survey=pile(), generated_at=NOW, session=SESSION, queues=waiting))
    assert errors(doc) == []
    found = finding_map(doc)["queue_not_adopted"]
    assert found["severity"] == "warning" and found["summary"].startswith("5 event(s) pushed before login")
    assert found["remediation"]["command"] == "synclease sync stop && synclease sync start"
    # Logged out, the local queue is the login's own: nothing to adopt.
    logged_out = build(DoctorView(survey=pile(), generated_at=NOW, session=None, queues=waiting[1:]))
    assert "queue_not_adopted" not in finding_map(logged_out)


def test_a_failed_adoption_is_logged_and_the_doctor_shows_the_events(
    root: DaemonRoot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """It was swallowed (``contextlib.suppress``): no line in the log, and no finding."""
    clock = FakeClock()
    session = new_session("https://sync.example.test", "tok-SECRET-adopt", "alice", None, NOW)
    save_session(root, session)
    with EventQueue(queue_path(root, None), clock) as local:
        local.enqueue_many([("t", n) for n in range(3)])

    def refuse(self: EventQueue, other: EventQueue, batch: int = 500) -> int:
        raise SyncleaseError("queue database is locked")

    monkeypatch.setattr(EventQueue, "adopt_from", refuse)
    with caplog.at_level(logging.WARNING, logger="synclease.daemon"):
        work = build_work(root, "inst-adopt", clock)
    work.worker.stop(1)
    assert any("could not adopt the events queued before login" in r.getMessage() for r in caplog.records)
    assert "queue database is locked" in caplog.text
    summary = SessionSummary(session.server_url, session.principal, session.team, session.auth_scope)
    doc = build(
        DoctorView(survey=pile(), generated_at=NOW, session=summary, queues=queue_facts(root, session))
    )
    assert finding_map(doc)["queue_not_adopted"]["summary"].startswith("3 event(s)")
