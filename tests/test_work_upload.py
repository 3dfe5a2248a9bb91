"""One batch upload against the loopback receiver: outcomes are data, the token stays in its header."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from synclease.adapters.upload import UploadOutcome, upload_batch
from synclease.core.events import Event, classify_status, encode_batch
from tests.neighbours import RawResponder
from tests.receiver import RESERVED_PORTS, Receiver

TOKEN = "tok-SECRET-77a1c0ffee"


def events(n: int = 3) -> list[Event]:
    return [
        Event(f"{i:032x}", "build.finished", json.dumps({"n": i, "s": "é"}), "2030-01-01T00:00:00.000000Z", 1)
        for i in range(n)
    ]


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def test_receiver_port_is_ephemeral_and_outside_reserved_ranges(rx: Receiver) -> None:
    assert rx.port not in RESERVED_PORTS
    assert rx.port > 0


def test_encode_batch_is_the_wire_shape() -> None:
    body = json.loads(encode_batch(events(2)))
    assert body == {
        "events": [
            {
                "id": f"{i:032x}",
                "type": "build.finished",
                "data": {"n": i, "s": "é"},
                "created_at": "2030-01-01T00:00:00.000000Z",
            }
            for i in range(2)
        ]
    }
    assert json.loads(encode_batch([])) == {"events": []}


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, "ok"),
        (201, "ok"),
        (204, "ok"),
        (401, "auth_failed"),
        (403, "auth_failed"),
        (408, "retryable"),
        (429, "retryable"),
        (500, "retryable"),
        (503, "retryable"),
        (301, "rejected"),
        (400, "rejected"),
        (404, "rejected"),
        (413, "rejected"),
    ],
)
def test_classify_status(status: int, kind: str) -> None:
    assert classify_status(status) == kind


def test_ok_posts_events_with_bearer_token(rx: Receiver) -> None:
    batch = events(3)
    outcome = upload_batch(rx.url, TOKEN, batch, timeout=5)
    assert outcome == UploadOutcome("ok", 200, "HTTP 200 OK")
    assert outcome.ok and not outcome.retryable and not outcome.auth_failed
    [request] = rx.requests
    assert request.path == "/v1/events"
    assert request.authorization == f"Bearer {TOKEN}"
    assert request.event_ids == [e.id for e in batch]
    assert request.events[1] == {
        "id": batch[1].id,
        "type": "build.finished",
        "data": {"n": 1, "s": "é"},
        "created_at": "2030-01-01T00:00:00.000000Z",
    }
    assert rx.accepted_ids == {e.id for e in batch}


def test_base_path_is_kept(rx: Receiver) -> None:
    outcome = upload_batch(rx.url + "/base", TOKEN, events(1), timeout=5)
    assert rx.requests[0].path == "/base/v1/events"
    assert outcome.kind == "rejected"  # this receiver only serves /v1/events


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, "auth_failed"), (403, "auth_failed"), (500, "retryable"), (503, "retryable"), (400, "rejected")],
)
def test_error_statuses(rx: Receiver, status: int, kind: str) -> None:
    rx.answer(status)
    outcome = upload_batch(rx.url, TOKEN, events(), timeout=5)
    assert outcome.kind == kind
    assert outcome.status == status
    assert outcome.reason.startswith(f"HTTP {status}")
    assert rx.accepted_ids == set()


def test_receiver_down_is_retryable_not_raised(rx: Receiver) -> None:
    rx.stop()
    outcome = upload_batch(rx.url, TOKEN, events(), timeout=5)
    assert outcome.kind == "retryable"
    assert outcome.status is None
    assert outcome.reason == "connection refused"


def test_restart_on_same_port(rx: Receiver) -> None:
    port = rx.port
    rx.stop()
    assert upload_batch(rx.url, TOKEN, events(), timeout=5).retryable
    rx.start()
    assert rx.port == port
    assert upload_batch(rx.url, TOKEN, events(), timeout=5).ok


def test_timeout_is_retryable(rx: Receiver) -> None:
    rx.hold()
    try:
        outcome = upload_batch(rx.url, TOKEN, events(), timeout=0.2)
    finally:
        rx.release()
    assert outcome.kind == "retryable"
    assert outcome.reason == "timed out"


@pytest.mark.parametrize("url", ["ftp://x", "https://", "not a url"])
def test_bad_server_url_is_an_outcome(url: str) -> None:
    outcome = upload_batch(url, TOKEN, events(), timeout=1)
    assert outcome.kind == "rejected"
    assert TOKEN not in outcome.reason


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (f"HTTP/1.1 500 leaked {TOKEN} here\r\nContent-Length: 0\r\n\r\n".encode(), "retryable"),
        (f"HTTP/1.1 418 {TOKEN}\r\nContent-Length: 0\r\n\r\n".encode(), "rejected"),
        (b"garbage that is not http\r\n\r\n", "retryable"),
        (b"", "retryable"),
    ],
)
def test_hostile_answers_never_raise_nor_leak_the_token(response: bytes, kind: str) -> None:
    server = RawResponder(response)
    try:
        outcome = upload_batch(f"http://127.0.0.1:{server.port}", TOKEN, events(), timeout=5)
    finally:
        server.close()
    assert outcome.kind == kind
    assert TOKEN not in outcome.reason
    assert TOKEN not in repr(outcome)


def test_retry_after_is_read_on_retryable_answers() -> None:
    server = RawResponder(b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n")
    try:
        outcome = upload_batch(f"http://127.0.0.1:{server.port}", TOKEN, events(), timeout=5)
    finally:
        server.close()
    assert outcome.kind == "retryable"
    assert outcome.retry_after == 7.0
