"""The auth session: which server the daemon uploads to, as whom, with which token.

Validation is pure (``parse_*`` raise :class:`~synclease.errors.BadInputError`, exit 2, with a one-line
message and a hint, and never echo a token). The session lives in ``<root>/session.json`` (0600, written
atomically). Reading is defensive: a missing file is "no session" (``None``); a file that exists but
cannot be trusted (corrupt, truncated, hostile, wrong mode, symlink, unknown version) raises
:class:`SessionFileError` — a :class:`~synclease.errors.SyncleaseError` (exit 1) with a machine
``reason`` — so a caller either reports it (``auth status``, ``doctor``) or runs local-only (the daemon).
It never escapes as a traceback and never carries the token.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit

from synclease.clock import from_wire, to_wire
from synclease.errors import BadInputError, SyncleaseError
from synclease.fsio import UnsafeFileError, atomic_write, ensure_private_dir, read_private, remove_file
from synclease.root import DaemonRoot

SESSION_SCHEMA = "synclease.session"
SESSION_SCHEMA_VERSION = 1
MAX_TOKEN_CHARS = 4096
MAX_URL_CHARS = 2048
MAX_LABEL_CHARS = 200
#: A session file larger than this is hostile, not parsed.
MAX_SESSION_BYTES = 16 * 1024
#: Separates the parts of :attr:`Session.auth_scope`; so principal and team may not contain it.
SCOPE_SEPARATOR = "|"

_LOGIN_HINT = "run: synclease auth login --server URL (token on stdin)"


class SessionFileError(SyncleaseError):
    """The session file exists but is not trustworthy; ``reason`` is a short machine-readable tag."""

    def __init__(self, reason: str, detail: str = "") -> None:
        text = f"session file is not usable ({reason}{': ' + detail if detail else ''})"
        super().__init__(text, hint=_LOGIN_HINT + " again, or synclease auth logout")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Session:
    """A logged-in session. The token is kept out of ``repr``/``str``; never log or print it."""

    server_url: str
    token: str = field(repr=False)
    principal: str | None
    team: str | None
    created_at: datetime

    @property
    def auth_scope(self) -> str:
        """``server|principal|team`` (empty parts for absent ones), e.g. ``https://x|alice|core``.

        It names whose events a queue holds and appears in leases, health and doctor: never the token.
        """
        return SCOPE_SEPARATOR.join((self.server_url, self.principal or "", self.team or ""))

    @property
    def session_id(self) -> str:
        """Names this login (not its token): a new login in the same scope gets a new id, so a daemon
        holding the previous token is not reused. Derived from scope and login time only."""
        digest = hashlib.sha256(f"{self.auth_scope}\n{self.created_at.isoformat()}".encode())
        return digest.hexdigest()[:16]


def _has_control_or_space(text: str) -> bool:
    return any(ch.isspace() or not ch.isprintable() for ch in text)


def parse_server_url(text: str) -> str:
    """Validate a server URL and return its normal form (lower-case scheme/host, no trailing ``/``).

    Accepts ``http``/``https`` with a host, an optional port and an optional base path. Refuses
    credentials, a query, a fragment, whitespace or control characters.
    """
    raw = text.strip()
    hint = "give a URL like https://sync.example.com"
    if not raw:
        raise BadInputError("server URL is empty", hint=hint)
    if len(raw) > MAX_URL_CHARS:
        raise BadInputError(f"server URL is longer than {MAX_URL_CHARS} characters", hint=hint)
    if _has_control_or_space(raw):
        raise BadInputError("server URL contains whitespace or control characters", hint=hint)
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BadInputError(f"server URL {raw!r} is not http:// or https://", hint=hint)
    if "@" in parts.netloc:
        raise BadInputError(
            "server URL must not contain credentials", hint="drop 'user:pass@'; the token goes on stdin"
        )
    if SCOPE_SEPARATOR in raw:
        raise BadInputError(f"server URL {raw!r} must not contain '|'", hint=hint)
    if parts.query or raw.endswith("?"):
        raise BadInputError(f"server URL {raw!r} must not have a query string", hint=hint)
    if parts.fragment or "#" in raw:
        raise BadInputError(f"server URL {raw!r} must not have a fragment", hint=hint)
    return f"{scheme}://{_normal_netloc(parts, raw, hint)}{parts.path.rstrip('/')}"


def _normal_netloc(parts: SplitResult, raw: str, hint: str) -> str:
    """``host[:port]`` with an IDNA (ASCII) host; bracketed if it is an IPv6 address."""
    host = parts.hostname
    if not host:
        raise BadInputError(f"server URL {raw!r} has no host", hint=hint)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise BadInputError(f"server URL {raw!r} has an invalid port", hint=hint)
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise BadInputError(f"server URL {raw!r} has an invalid host name", hint=hint) from None
    netloc = f"[{host}]" if ":" in host else host
    return netloc if port is None else f"{netloc}:{port}"


def parse_token(text: str) -> str:
    """Validate a bearer token (surrounding whitespace, e.g. stdin's newline, is stripped).

    Non-empty, at most :data:`MAX_TOKEN_CHARS`, printable ASCII with no whitespace inside (it goes in an
    HTTP header). Error messages never contain the token.
    """
    token = text.strip()
    hint = 'pipe the token on stdin, e.g.: printf %s "$TOKEN" | synclease auth login --server URL'
    if not token:
        raise BadInputError("token is empty", hint=hint)
    if len(token) > MAX_TOKEN_CHARS:
        raise BadInputError(f"token is longer than {MAX_TOKEN_CHARS} characters", hint=hint)
    if any(ch.isspace() for ch in token):
        raise BadInputError("token contains whitespace or a line break", hint="give a single-line token")
    if not all(0x21 <= ord(ch) <= 0x7E for ch in token):
        raise BadInputError(
            "token contains non-printable or non-ASCII characters", hint="give the token exactly as issued"
        )
    return token


def parse_label(text: str | None, name: str) -> str | None:
    """Validate an optional principal/team: ``None`` or blank → ``None``; no ``|``, control characters."""
    if text is None:
        return None
    value = text.strip()
    if not value:
        return None
    hint = f"give a plain {name} name, e.g. --{name} alice"
    if len(value) > MAX_LABEL_CHARS:
        raise BadInputError(f"{name} is longer than {MAX_LABEL_CHARS} characters", hint=hint)
    if SCOPE_SEPARATOR in value or any(not ch.isprintable() for ch in value):
        raise BadInputError(f"{name} {value!r} contains '|' or control characters", hint=hint)
    return value


def new_session(
    server_url: str, token: str, principal: str | None, team: str | None, created_at: datetime
) -> Session:
    """Validate raw user input into a :class:`Session` (raises :class:`BadInputError`)."""
    return Session(
        server_url=parse_server_url(server_url),
        token=parse_token(token),
        principal=parse_label(principal, "principal"),
        team=parse_label(team, "team"),
        created_at=created_at,
    )


def encode_session(session: Session) -> bytes:
    document = {
        "schema": SESSION_SCHEMA,
        "schema_version": SESSION_SCHEMA_VERSION,
        "server_url": session.server_url,
        "token": session.token,
        "principal": session.principal,
        "team": session.team,
        "created_at": to_wire(session.created_at),
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _optional_str(document: dict[str, Any], key: str) -> str | None:
    value = document.get(key)
    if value is None or isinstance(value, str):
        return value
    raise SessionFileError("bad_field", key)


def decode_session(data: bytes) -> Session:
    """Parse and re-validate a session document; anything off is :class:`SessionFileError`."""
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SessionFileError("not_json") from None
    if not isinstance(document, dict):
        raise SessionFileError("not_an_object")
    if document.get("schema") != SESSION_SCHEMA:
        raise SessionFileError("unknown_schema")
    version = document.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version != SESSION_SCHEMA_VERSION:
        raise SessionFileError("unknown_version", str(version)[:20])
    fields: dict[str, Any] = {}
    for key in ("server_url", "token", "created_at"):
        value = document.get(key)
        if not isinstance(value, str):
            raise SessionFileError("bad_field", key)
        fields[key] = value
    try:
        created_at = from_wire(fields["created_at"])
        session = new_session(
            fields["server_url"],
            fields["token"],
            _optional_str(document, "principal"),
            _optional_str(document, "team"),
            created_at,
        )
    except BadInputError as exc:
        # parse_token's messages never quote the token, so the detail is safe to show.
        raise SessionFileError("invalid_value", exc.message[:120]) from None
    except (ValueError, OverflowError):
        raise SessionFileError("bad_field", "created_at") from None
    return session


def save_session(root: DaemonRoot, session: Session) -> None:
    """Write the session atomically, mode 0600 (replacing any previous one)."""
    ensure_private_dir(root.path)
    atomic_write(root.session_path, encode_session(session))


def load_session(root: DaemonRoot) -> Session | None:
    """The stored session; ``None`` if there is none; :class:`SessionFileError` if it is untrustworthy."""
    try:
        data = read_private(root.session_path, MAX_SESSION_BYTES)
    except FileNotFoundError:
        return None
    except UnsafeFileError as exc:
        raise SessionFileError(exc.reason, exc.detail) from None
    return decode_session(data)


def clear_session(root: DaemonRoot) -> bool:
    """Remove the session file (never following a link). True if there was one."""
    path = root.session_path
    if path.is_dir() and not path.is_symlink():
        raise SessionFileError("not_regular_file")
    return remove_file(path)


def current_session(root: DaemonRoot) -> Session | None:
    """The stored session, or None when there is none or it cannot be trusted (doctor reports that)."""
    try:
        return load_session(root)
    except SessionFileError as exc:
        logging.getLogger("synclease").warning("running local-only: %s", exc.one_line())
        return None
