"""The auth session: validation, the 0600 file, defensive reads, and the token kept out of sight."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from synclease.adapters.root import DaemonRoot
from synclease.adapters.session_store import clear_session, load_session, save_session
from synclease.core.errors import EXIT_PROBLEM, EXIT_USAGE, BadInputError, SyncleaseError
from synclease.core.session import (
    MAX_SESSION_BYTES,
    MAX_TOKEN_CHARS,
    Session,
    SessionFileError,
    encode_session,
    new_session,
    parse_label,
    parse_server_url,
    parse_token,
)

TOKEN = "tok-SECRET-4f9a2c71b3e8"
WHEN = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@pytest.fixture
def root(tmp_path: Path) -> DaemonRoot:
    return DaemonRoot(tmp_path / "root").prepare()


def make_session(principal: str | None = "alice", team: str | None = "core") -> Session:
    return new_session("https://sync.example.com", TOKEN, principal, team, WHEN)


# --- parse_server_url -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://sync.example.com", "https://sync.example.com"),
        ("  HTTPS://Sync.Example.COM/  ", "https://sync.example.com"),
        ("http://127.0.0.1:8080/base/", "http://127.0.0.1:8080/base"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://127.0.0.2", "http://127.0.0.2"),
        ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
        ("https://sync.example.com:443/api/v2", "https://sync.example.com:443/api/v2"),
    ],
)
def test_parse_server_url_accepts_and_normalises(given: str, expected: str) -> None:
    assert parse_server_url(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "",
        "   ",
        "sync.example.com",
        "ftp://sync.example.com",
        "http://sync.example.com",  # plain http only to loopback: the token would cross the network
        "http://10.0.0.5:8080",
        "file:///etc/passwd",
        "https://",
        "https:///path",
        "https://user:pw@sync.example.com",
        "https://user@sync.example.com",
        "https://sync.example.com/?a=1",
        "https://sync.example.com?",
        "https://sync.example.com/#frag",
        "https://sync.example.com:99999",
        "https://sync.example.com:0",
        "https://sync.example.com:http",
        "https://sync example.com",
        "https://sync.example.com/a|b",
        "https://" + "a" * 70 + ".example",
        "https://sync.example.com/\npath",
        "https://" + "a" * 3000 + ".com",
    ],
)
def test_parse_server_url_refuses_with_one_line_and_hint(given: str) -> None:
    with pytest.raises(BadInputError) as info:
        parse_server_url(given)
    assert info.value.exit_code == EXIT_USAGE
    assert info.value.hint
    assert "\n" not in info.value.one_line()


# --- parse_token / parse_label --------------------------------------------------------------------


def test_parse_token_strips_surrounding_whitespace() -> None:
    assert parse_token(f"  {TOKEN}\n") == TOKEN
    assert parse_token("x" * MAX_TOKEN_CHARS) == "x" * MAX_TOKEN_CHARS


@pytest.mark.parametrize(
    "given",
    [
        "",
        " \n\t",
        "abc def-SECRET",
        "abc\ndef-SECRET",
        "abc\rdef-SECRET",
        "x" * (MAX_TOKEN_CHARS + 1),
        "abcé-SECRET",
        "abc\x00def-SECRET",
        "abc\x7fdef-SECRET",
    ],
)
def test_parse_token_refuses_without_echoing_the_token(given: str) -> None:
    with pytest.raises(BadInputError) as info:
        parse_token(given)
    assert info.value.exit_code == EXIT_USAGE
    text = info.value.one_line()
    assert "SECRET" not in text
    assert "x" * 50 not in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("parse", "given", "message"),
    [
        (parse_server_url, " ", "server URL is empty"),
        (parse_server_url, "https://" + "a" * 3000, "server URL is longer than 2048 characters"),
        (parse_token, "\n", "token is empty"),
        (parse_token, "x" * (MAX_TOKEN_CHARS + 1), f"token is longer than {MAX_TOKEN_CHARS} characters"),
    ],
)
def test_url_and_token_refuse_empty_and_overlong_text_the_same_way(
    parse: Callable[[str], str], given: str, message: str
) -> None:
    with pytest.raises(BadInputError) as info:
        parse(given)
    assert info.value.message == message


def test_parse_label() -> None:
    assert parse_label(None, "team") is None
    assert parse_label("   ", "team") is None
    assert parse_label(" core ", "team") == "core"
    for bad in ("a|b", "a\nb", "x" * 201):
        with pytest.raises(BadInputError):
            parse_label(bad, "principal")


# --- Session --------------------------------------------------------------------------------------


def test_auth_scope_is_url_principal_team_without_token() -> None:
    assert make_session().auth_scope == "https://sync.example.com|alice|core"
    assert make_session(None, None).auth_scope == "https://sync.example.com||"
    assert make_session(None, "core").auth_scope == "https://sync.example.com||core"
    assert TOKEN not in make_session().auth_scope


def test_token_never_in_repr_or_str() -> None:
    session = make_session()
    assert TOKEN not in repr(session)
    assert TOKEN not in str(session)
    assert TOKEN not in f"{session}"
    assert "alice" in repr(session)


# --- the file -------------------------------------------------------------------------------------


def test_save_load_round_trip_0600(root: DaemonRoot) -> None:
    session = make_session()
    save_session(root, session)
    mode = stat.S_IMODE(os.stat(root.session_path).st_mode)
    assert mode == 0o600
    assert load_session(root) == session
    assert not [p for p in root.path.iterdir() if p.name.endswith(".tmp")]


def test_save_replaces_previous_session(root: DaemonRoot) -> None:
    save_session(root, make_session())
    other = new_session("http://127.0.0.1:8000", "other-token", None, None, WHEN)
    save_session(root, other)
    assert load_session(root) == other


def test_load_missing_is_none(root: DaemonRoot) -> None:
    assert load_session(root) is None


def test_clear_session(root: DaemonRoot) -> None:
    save_session(root, make_session())
    assert clear_session(root) is True
    assert clear_session(root) is False
    assert load_session(root) is None


def _document() -> dict[str, object]:
    document: dict[str, object] = json.loads(encode_session(make_session()))
    return document


def _write(root: DaemonRoot, data: bytes) -> None:
    fd = os.open(root.session_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _with(**changes: object) -> bytes:
    document = _document()
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\xff\xfe garbage", "not_utf8"),
        (encode_session(make_session())[:40], "not_json"),
        (b"[1, 2, 3]", "not_object"),
        (b'{"schema": "synclease.session", "schema_version": NaN}', "bad_number"),
        (b"[" * 5000 + b"]" * 5000, "not_object"),
        (_with(schema="something.else"), "unknown_schema"),
        (_with(schema_version=2), "unknown_version"),
        (_with(schema_version=True), "bad_field"),
        (_with(token=12345), "bad_field"),
        (_with(server_url=None), "bad_field"),
        (_with(principal=["alice"]), "bad_field"),
        (_with(created_at="yesterday"), "bad_field"),
        (_with(created_at="2030-01-01T00:00:00"), "bad_field"),
        (_with(server_url="ftp://x"), "invalid_value"),
        (_with(token=f"{TOKEN} with space"), "invalid_value"),
        (_with(token=""), "invalid_value"),
        (_with(team="a|b"), "invalid_value"),
    ],
)
def test_load_refuses_corrupt_or_hostile_content(root: DaemonRoot, data: bytes, reason: str) -> None:
    _write(root, data)
    with pytest.raises(SessionFileError) as info:
        load_session(root)
    assert info.value.reason == reason
    assert isinstance(info.value, SyncleaseError)
    assert info.value.exit_code == EXIT_PROBLEM
    assert TOKEN not in info.value.one_line()
    assert "\n" not in info.value.one_line()


def test_load_refuses_unsafe_files(root: DaemonRoot, tmp_path: Path) -> None:
    save_session(root, make_session())
    os.chmod(root.session_path, 0o644)
    with pytest.raises(SessionFileError) as info:
        load_session(root)
    assert info.value.reason == "insecure_mode"

    os.unlink(root.session_path)
    target = tmp_path / "elsewhere.json"
    target.write_bytes(encode_session(make_session()))
    os.chmod(target, 0o600)
    os.symlink(target, root.session_path)
    with pytest.raises(SessionFileError) as info:
        load_session(root)
    assert info.value.reason == "symlink"

    os.unlink(root.session_path)
    _write(root, b" " * (MAX_SESSION_BYTES + 1))
    with pytest.raises(SessionFileError) as info:
        load_session(root)
    assert info.value.reason == "too_large"

    os.unlink(root.session_path)
    os.mkdir(root.session_path)
    with pytest.raises(SessionFileError):
        load_session(root)
    with pytest.raises(SessionFileError):
        clear_session(root)


def test_clear_session_never_follows_a_symlink(root: DaemonRoot, tmp_path: Path) -> None:
    target = tmp_path / "keep.json"
    target.write_text("{}")
    os.symlink(target, root.session_path)
    assert clear_session(root) is True
    assert target.exists()
    assert not root.session_path.is_symlink()


def test_unknown_fields_are_tolerated(root: DaemonRoot) -> None:
    _write(root, _with(future_field={"x": 1}))
    assert load_session(root) == make_session()
