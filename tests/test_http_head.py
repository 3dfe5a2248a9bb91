"""The control plane's small HTTP/1.x request reader, and what the daemon's start does not import
(ADR 0015: ``http.server``, ``email``, ``http.client`` and ``ssl`` cost an idle daemon megabytes)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from synclease.adapters.http_server import MAX_HEADERS, MAX_LINE_BYTES, _Refused, read_head


def head(raw: bytes) -> tuple[str, str, dict[str, str]] | None:
    return read_head(io.BufferedReader(io.BytesIO(raw)))  # type: ignore[arg-type]


def test_a_request_head_is_read_with_lower_case_names_and_the_last_value_winning() -> None:
    raw = b"POST /api/retire?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: one\r\nx-a: two\r\nX-Long: a\r\n  b\r\n\r\nbody"
    assert head(raw) == ("POST", "/api/retire?x=1", {"host": "127.0.0.1", "x-a": "two", "x-long": "a b"})


def test_an_empty_connection_is_no_request() -> None:
    assert head(b"") is None
    assert head(b"\r\n") is None


@pytest.mark.parametrize(
    ("raw", "status", "error"),
    [
        (b"GET /\r\n\r\n", 400, "bad_request_line"),
        (b"GET / FTP/1.0\r\n\r\n", 400, "bad_request_line"),
        (b"GET /" + b"a" * MAX_LINE_BYTES + b" HTTP/1.0\r\n\r\n", 414, "request_line_too_long"),
        (b"GET / HTTP/1.0\r\nnocolon\r\n\r\n", 400, "bad_header"),
        (b"GET / HTTP/1.0\r\nX: " + b"a" * MAX_LINE_BYTES + b"\r\n\r\n", 431, "header_line_too_long"),
        (b"GET / HTTP/1.0\r\n" + b"X: y\r\n" * (MAX_HEADERS + 1) + b"\r\n", 431, "too_many_headers"),
    ],
)
def test_a_bad_head_is_refused_with_a_status(raw: bytes, status: int, error: str) -> None:
    with pytest.raises(_Refused) as refused:
        head(raw)
    assert (refused.value.status, refused.value.error) == (status, error)


def test_the_daemon_starts_without_http_server_email_or_ssl() -> None:
    probe = (
        "import sys, synclease.daemons.sync.main, synclease.daemons.dashboard.daemon; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('email', 'ssl', 'socketserver', 'mimetypes') or m in ('http.server', 'http.client')))"
    )
    assert subprocess.check_output([sys.executable, "-c", probe], text=True).strip() == "[]"
