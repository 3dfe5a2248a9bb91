"""Ledger v1 events and lines: round trips, the 4 KiB bound, every hostile line skipped and counted,
the closed sets, and ``protocol/ledger-v1.schema.json`` against real encoded events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from synclease.core.actor import Actor
from synclease.core.classify import TABLE
from synclease.core.codec import CodecError
from synclease.core.escalate import CleanupPath
from synclease.core.fleet import CleanupClass, LeaseVerdictReason, SkipReason
from synclease.core.governor import Reason
from synclease.core.ledger import (
    LOG_TAIL_LINES,
    MAX_LINE_BYTES,
    MAX_LOG_LINE_CHARS,
    EventEvidence,
    EventKind,
    LedgerEvent,
    log_lines,
)
from synclease.core.ledger_codec import decode_event, decode_lines, encode_event
from synclease.core.reasons import LedgerReason
from synclease.core.record import replace

PROTOCOL_DIR = Path(__file__).resolve().parent.parent / "protocol"
T0 = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
IID = "ledger-inst-0001"


def load_schema() -> Draft202012Validator:
    schema = json.loads((PROTOCOL_DIR / "ledger-v1.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


VALIDATOR = load_schema()


def make_event(**changes: Any) -> LedgerEvent:
    event = LedgerEvent(
        at=T0,
        kind=EventKind.RETIRED,
        instance_id=IID,
        pid=4242,
        port=9410,
        package_version="1.4.0",
        reason=LedgerReason.SUPERSEDED,
        by=None,
        evidence=EventEvidence(superseded_by="ledger-inst-0002", superseded_generation=17, queue_depth=3),
    )
    return replace(event, **changes)


def full_event() -> LedgerEvent:
    return make_event(
        kind=EventKind.VANISHED,
        reason=LedgerReason.HOLDER_DEAD,
        by=Actor(pid=777, command="auth doctor --reset"),
        evidence=EventEvidence(
            idle_seconds=12.5,
            superseded_by="ledger-inst-0002",
            superseded_generation=2**40,
            queue_depth=0,
            cleanup_path=CleanupPath.TERMINATE,
            error_code="EADDRINUSE",
            log_tail=("Traceback (most recent call last):", "\tboom", "RuntimeError: x"),
        ),
    )


def doc_of(event: LedgerEvent) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(encode_event(event))
    return doc


def line_of(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode() + b"\n"


def reason_of(line: bytes) -> str:
    with pytest.raises(CodecError) as info:
        decode_event(line)
    return info.value.reason


# --- round trips and the rendering --------------------------------------------------------------


@pytest.mark.parametrize("event", [make_event(), full_event()], ids=["retired", "vanished-full"])
def test_round_trip(event: LedgerEvent) -> None:
    assert decode_event(encode_event(event)) == event


def test_round_trip_of_a_start_that_failed_before_binding() -> None:
    event = LedgerEvent(
        at=T0,
        kind=EventKind.START_FAILED,
        instance_id=None,
        pid=None,
        port=None,
        package_version=None,
        reason=LedgerReason.STARTUP_FAILED,
        by=Actor(pid=99, command="sync start"),
        evidence=EventEvidence(error_code="exit_70", log_tail=log_lines("one\ntwo\n")),
    )
    assert decode_event(encode_event(event)) == event
    assert event.evidence.log_tail == ("one", "two")


def test_every_kind_and_reason_round_trips() -> None:
    for kind in EventKind:
        for reason in [None, *LedgerReason]:
            event = make_event(kind=kind, reason=reason)
            assert decode_event(encode_event(event)) == event


def test_line_is_one_sorted_compact_ascii_json_object_with_every_field() -> None:
    line = encode_event(full_event())
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert line.isascii()
    doc = json.loads(line)
    assert list(doc) == sorted(doc)
    assert set(doc) == {
        "schema", "schema_version", "at", "event", "instance_id", "pid", "port",
        "package_version", "reason", "by", "evidence",
    }  # fmt: skip
    assert doc["schema"] == "synclease.ledger" and doc["schema_version"] == 1
    assert doc["at"] == "2026-05-06T07:08:09.123456Z"
    assert doc["event"] == "vanished" and doc["reason"] == "holder_dead"
    assert doc["by"] == {"pid": 777, "command": "auth doctor --reset"}
    assert doc["evidence"]["cleanup_path"] == "terminate"
    assert doc["evidence"]["log_truncated"] is False


def test_unset_fields_are_written_as_null() -> None:
    doc = doc_of(make_event(reason=None, evidence=EventEvidence()))
    assert doc["reason"] is None and doc["by"] is None
    assert doc["evidence"] == {
        "idle_seconds": None, "superseded_by": None, "superseded_generation": None, "queue_depth": None,
        "cleanup_path": None, "error_code": None, "log_tail": None, "log_truncated": False, "daemon_root": None,
    }  # fmt: skip


def test_times_with_other_offsets_are_read_as_utc() -> None:
    doc = doc_of(make_event())
    doc["at"] = "2026-05-06T09:08:09.123456+02:00"
    assert decode_event(line_of(doc)).at == T0
    event = make_event(at=T0.astimezone(timezone(timedelta(hours=-3))))
    assert doc_of(event)["at"] == "2026-05-06T07:08:09.123456Z"


def test_missing_optional_fields_are_null_and_unknown_fields_are_ignored() -> None:
    doc = {"schema": "synclease.ledger", "schema_version": 1, "at": "2026-05-06T07:08:09.123456Z"}
    doc |= {"event": "serving", "future_field": {"x": 1}}
    event = decode_event(line_of(doc))
    assert (event.kind, event.instance_id, event.pid, event.reason, event.by) == (
        EventKind.SERVING, None, None, None, None,
    )  # fmt: skip
    assert event.evidence == EventEvidence()
    doc = doc_of(full_event())
    doc["evidence"]["rss_bytes"] = 123
    assert decode_event(line_of(doc)) == full_event()


# --- the 4 KiB bound ----------------------------------------------------------------------------


def test_a_huge_log_tail_is_cut_to_fit_and_keeps_the_newest_lines() -> None:
    lines = tuple(f"{i:05d} " + "x" * 5000 for i in range(1000))
    event = full_event()
    event = replace(event, evidence=replace(event.evidence, log_tail=lines))
    assert event.evidence.log_truncated is True
    assert event.evidence.log_tail is not None and len(event.evidence.log_tail) == LOG_TAIL_LINES
    assert all(len(line) == MAX_LOG_LINE_CHARS for line in event.evidence.log_tail)
    line = encode_event(event)
    assert len(line) <= MAX_LINE_BYTES
    decoded = decode_event(line)
    assert decoded.evidence.log_truncated is True
    tail = decoded.evidence.log_tail
    assert tail and tail[-1].startswith("00999 ")  # the newest line survives
    assert list(tail) == sorted(tail)  # still in order, oldest dropped first
    assert VALIDATOR.is_valid(json.loads(line))


def test_worst_case_non_ascii_log_tail_and_version_still_fit() -> None:
    astral = "\U0001f600"  # 12 bytes once escaped as a surrogate pair
    event = full_event()
    event = replace(
        event,
        package_version=astral * 500,
        evidence=replace(event.evidence, log_tail=(astral * 500,) * 50),
    )
    assert event.package_version == astral * 64
    line = encode_event(event)
    assert len(line) <= MAX_LINE_BYTES
    assert decode_event(line).package_version == astral * 64
    assert VALIDATOR.is_valid(json.loads(line))
    longest_id = "i" * 64
    no_tail = replace(
        event,
        instance_id=longest_id,
        pid=2**31 - 1,
        by=Actor(pid=2**31 - 1, command="a" * 48),
        evidence=EventEvidence(
            idle_seconds=1e9 - 1e-6,
            superseded_by=longest_id,
            superseded_generation=2**62,
            queue_depth=10**12,
            cleanup_path=CleanupPath.HTTP_RETIRE,
            error_code="E" * 64,
            log_truncated=True,
        ),
    )
    assert len(encode_event(no_tail)) < MAX_LINE_BYTES // 2  # so a log tail always has room


def test_log_lines_lose_control_characters_but_keep_tabs() -> None:
    evidence = EventEvidence(log_tail=("\x1b[31mred\x1b[0m\tok\r", "bell\x07", "nul\x00", "lone\ud800"))
    assert evidence.log_tail == ("\ufffd[31mred\ufffd[0m\tok\ufffd", "bell\ufffd", "nul\ufffd", "lone\ufffd")
    assert evidence.log_truncated is False
    event = make_event(evidence=evidence)
    assert decode_event(encode_event(event)) == event


# --- hostile lines ------------------------------------------------------------------------------


def _with(**changes: Any) -> bytes:
    doc = doc_of(full_event())
    doc.update(changes)
    return line_of(doc)


def _with_evidence(**changes: Any) -> bytes:
    doc = doc_of(full_event())
    doc["evidence"].update(changes)
    return line_of(doc)


HOSTILE: dict[str, tuple[bytes, str]] = {
    "empty": (b"\n", "empty"),
    "blank": (b"   \t \n", "empty"),
    "binary": (bytes(range(256)), "not_utf8"),
    "high-bytes": (b"\xff\xfe\xfd\n", "not_utf8"),
    "truncated": (encode_event(full_event())[:100], "not_json"),
    "megabyte": (b'{"schema":"synclease.ledger","x":"' + b"a" * (1 << 20) + b'"}\n', "too_large"),
    "just-over": (b"{" + b" " * MAX_LINE_BYTES + b"}\n", "too_large"),
    "not-json": (b"schema: synclease.ledger\n", "not_json"),
    "array": (b'["synclease.ledger", 1]\n', "not_object"),
    "string": (b'"synclease.ledger"\n', "not_object"),
    "number": (b"42\n", "not_object"),
    "null": (b"null\n", "not_object"),
    "nan": (_with(pid=float("nan")), "bad_number"),
    "infinity-in-evidence": (_with_evidence(idle_seconds=float("inf")), "bad_number"),
    "wrong-schema": (_with(schema="synclease.lease"), "unknown_schema"),
    "no-schema": (_with(schema=None), "unknown_schema"),
    "version-2": (_with(schema_version=2), "unknown_version"),
    "version-string": (_with(schema_version="1"), "bad_field"),
    "version-bool": (_with(schema_version=True), "bad_field"),
    "unknown-event": (_with(event="exploded"), "bad_field"),
    "event-missing": (_with(event=None), "bad_field"),
    "unknown-reason": (_with(reason="bored"), "bad_field"),
    "reason-not-string": (_with(reason=7), "bad_field"),
    "at-missing": (_with(at=None), "bad_field"),
    "at-naive": (_with(at="2026-05-06T07:08:09"), "bad_field"),
    "at-garbage": (_with(at="yesterday"), "bad_field"),
    "at-year-0001": (_with(at="0001-01-01T00:00:00.000000Z"), "bad_field"),
    "pid-string": (_with(pid="4242"), "bad_field"),
    "pid-float": (_with(pid=4242.0), "bad_field"),
    "pid-bool": (_with(pid=True), "bad_field"),
    "pid-zero": (_with(pid=0), "bad_field"),
    "pid-huge": (_with(pid=2**31), "bad_field"),
    "port-outside-sync-range": (_with(port=9237), "bad_field"),
    "instance-id-short": (_with(instance_id="abc"), "bad_field"),
    "instance-id-newline": (_with(instance_id="ledger-inst-0001\n"), "bad_field"),
    "instance-id-number": (_with(instance_id=12345678), "bad_field"),
    "version-empty": (_with(package_version=""), "bad_field"),
    "version-too-long": (_with(package_version="9" * 65), "bad_field"),
    "version-nul": (_with(package_version="1\x00"), "bad_field"),
    "by-list": (_with(by=[1, "sync start"]), "bad_field"),
    "by-argv": (_with(by={"pid": 1, "command": "sync start --token=s3cret"}), "bad_field"),
    "by-no-pid": (_with(by={"command": "sync start"}), "bad_field"),
    "evidence-string": (_with(evidence="idle"), "bad_field"),
    "idle-negative": (_with_evidence(idle_seconds=-1), "bad_field"),
    "idle-string": (_with_evidence(idle_seconds="900"), "bad_field"),
    "depth-float": (_with_evidence(queue_depth=1.5), "bad_field"),
    "generation-zero": (_with_evidence(superseded_generation=0), "bad_field"),
    "superseded-by-bad": (_with_evidence(superseded_by="../../etc"), "bad_field"),
    "cleanup-path-unknown": (_with_evidence(cleanup_path="nuke"), "bad_field"),
    "error-code-spaces": (_with_evidence(error_code="it broke badly"), "bad_field"),
    "log-tail-string": (_with_evidence(log_tail="one line"), "bad_field"),
    "log-tail-21-lines": (_with_evidence(log_tail=["x"] * 21), "bad_field"),
    "log-line-too-long": (_with_evidence(log_tail=["x" * 201]), "bad_field"),
    "log-line-escape": (_with_evidence(log_tail=["\x1b]0;pwned\x07"]), "bad_field"),
    "log-line-number": (_with_evidence(log_tail=[1]), "bad_field"),
    "log-truncated-string": (_with_evidence(log_truncated="yes"), "bad_field"),
    "deep-nesting": (b'{"a":' + b"[" * 2040 + b"]" * 2040 + b"}\n", "not_json"),
    "huge-int": (_with(pid=10**3000), "bad_field"),
}


@pytest.mark.parametrize(("data", "reason"), list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_line_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    assert reason_of(data) == reason


def test_every_hostile_line_is_skipped_and_counted_among_good_ones() -> None:
    good = [make_event(pid=pid) for pid in range(1, len(HOSTILE) + 2)]
    data = b""
    for event, (hostile, _) in zip(good, HOSTILE.values(), strict=False):
        data += encode_event(event) + hostile.rstrip(b"\n").replace(b"\n", b" ") + b"\n"
    data += encode_event(good[-1])
    events, skipped = decode_lines(data)
    assert events == good
    assert skipped == len(HOSTILE)


def test_truncated_line_is_refused_at_every_cut() -> None:
    line = encode_event(full_event())
    for cut in range(1, len(line) - 2):
        with pytest.raises(CodecError):
            decode_event(line[:cut])


def test_bytes_after_the_last_newline_are_not_a_line_yet() -> None:
    whole = encode_event(make_event())
    assert decode_lines(whole + whole[:50]) == ([make_event()], 0)
    assert decode_lines(whole + whole[:50], complete=True) == ([make_event()], 1)
    assert decode_lines(b"") == ([], 0)
    assert decode_lines(whole[:-1]) == ([], 0)


# --- building events ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"at": datetime(2026, 1, 1)},  # naive
        {"instance_id": "x"},
        {"pid": 0},
        {"port": 80},
        {"package_version": ""},
        {"package_version": "1\x00"},
        {"at": datetime(1969, 12, 31, tzinfo=UTC)},
    ],
    ids=["naive-at", "short-id", "pid-0", "port-80", "empty-version", "nul-version", "before-1970"],
)
def test_bad_closed_forms_are_refused_when_an_event_is_built(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_event(**changes)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"idle_seconds": -1.0},
        {"superseded_by": "not an id"},
        {"superseded_generation": 0},
        {"queue_depth": -1},
        {"error_code": "has spaces"},
        {"error_code": "x" * 65},
    ],
)
def test_bad_evidence_is_refused_when_built(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EventEvidence(**kwargs)


@pytest.mark.parametrize(
    "command", ["", "Sync start", "sync start --token=abc", "a b c d e", "x" * 49, "sync\nstart"]
)
def test_by_command_is_a_short_command_name_never_argv(command: str) -> None:
    with pytest.raises(ValueError):
        Actor(pid=1, command=command)


def test_the_reason_set_covers_the_reasons_the_governor_and_the_reaper_use() -> None:
    ledger = {reason.value for reason in LedgerReason}
    assert {reason.value for reason in Reason} <= ledger
    forced = {"expired_lease"} | {
        r.value for r in (LeaseVerdictReason.HOLDER_DEAD, LeaseVerdictReason.PID_REUSED)
    }
    assert forced <= ledger
    # Only operator_required rows can be swept (with --force); never_touch ones never are.
    operator_required = {
        row.reason.value
        for row in TABLE
        if row.cleanup_class is CleanupClass.OPERATOR_REQUIRED and row.reason
    }
    assert operator_required <= ledger
    assert {r.value for r in SkipReason} - operator_required  # there are never_touch reasons left out


# --- the schema ---------------------------------------------------------------------------------


def test_encoded_events_validate_against_the_schema() -> None:
    for event in [make_event(), full_event(), make_event(evidence=EventEvidence(), reason=None)]:
        errors = list(VALIDATOR.iter_errors(doc_of(event)))
        assert not errors, errors


_ids = st.from_regex(r"\A[A-Za-z0-9_-]{8,64}\Z")
_evidence = st.builds(
    EventEvidence,
    idle_seconds=st.none() | st.floats(0, 1e9),
    superseded_by=st.none() | _ids,
    superseded_generation=st.none() | st.integers(1, 2**62),
    queue_depth=st.none() | st.integers(0, 10**12),
    cleanup_path=st.none() | st.sampled_from(CleanupPath),
    error_code=st.none() | st.from_regex(r"\A[A-Za-z0-9_.:-]{1,64}\Z"),
    log_tail=st.none() | st.lists(st.text(max_size=300), max_size=30).map(tuple),
    log_truncated=st.booleans(),
)
_events = st.builds(
    LedgerEvent,
    at=st.datetimes(datetime(1971, 1, 1), datetime(9998, 1, 1), timezones=st.just(UTC)),
    kind=st.sampled_from(EventKind),
    instance_id=st.none() | _ids,
    pid=st.none() | st.integers(1, 2**31 - 1),
    port=st.none() | st.integers(9400, 9449),
    package_version=st.none() | st.text(min_size=1, max_size=100).filter(lambda s: "\x00" not in s),
    reason=st.none() | st.sampled_from(LedgerReason),
    by=st.none()
    | st.builds(
        Actor, pid=st.integers(1, 2**31 - 1), command=st.sampled_from(["sync start", "auth doctor --reset"])
    ),
    evidence=_evidence,
)


@settings(max_examples=300, deadline=None)
@given(_events)
def test_any_event_fits_round_trips_and_validates(event: LedgerEvent) -> None:
    line = encode_event(event)
    assert len(line) <= MAX_LINE_BYTES
    decoded = decode_event(line)
    doc = json.loads(line)
    assert not list(VALIDATOR.iter_errors(doc))
    if doc["evidence"]["log_tail"] == (
        None if event.evidence.log_tail is None else list(event.evidence.log_tail)
    ):
        assert decoded == event
    else:  # lines were dropped to fit: only the log tail and its flag differ
        assert decoded.evidence.log_truncated is True
        assert replace(decoded, evidence=event.evidence) == event


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("event",), "exploded"),
        (("reason",), "bored"),
        (("schema_version",), 2),
        (("port",), 9450),
        (("at",), "2026-05-06T07:08:09Z\n"),
        (("by", "command"), "sync start --token=abc"),
        (("evidence", "cleanup_path"), "nuke"),
        (("evidence", "log_tail"), ["x"] * 21),
        (("evidence", "log_tail"), ["\x1b[31m"]),
    ],
)
def test_the_schema_refuses_what_readers_refuse(path: tuple[str, ...], value: Any) -> None:
    doc = doc_of(full_event())
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert not VALIDATOR.is_valid(doc)
    with pytest.raises(CodecError):
        decode_event(line_of(doc))


def test_a_reaped_daemon_of_another_root_names_its_root_and_round_trips() -> None:
    event = make_event(evidence=EventEvidence(daemon_root="/home/dev/project-b/.synclease"))
    assert decode_event(encode_event(event)).evidence.daemon_root == "/home/dev/project-b/.synclease"
    for bad in ("", "x" * 1025, "/a\nb"):
        with pytest.raises(ValueError):
            EventEvidence(daemon_root=bad)
