"""The auth session: which server the daemon uploads to, as whom, with which token; and its codec.

Validation (``parse_*``) raises :class:`~synclease.core.errors.BadInputError` (exit 2) with a one-line
message and a hint, and never echoes a token. A session document that cannot be trusted (corrupt,
truncated, hostile, unknown version, invalid values) is :class:`SessionFileError`, a
:class:`~synclease.core.errors.SyncleaseError` (exit 1) with a machine ``reason``, so a caller either
reports it (``auth status``, ``doctor``) or runs local-only (the daemon). The file itself is handled by
:mod:`synclease.adapters.session_store`.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import SplitResult, urlsplit

from synclease.core.clock import to_wire
from synclease.core.codec import CodecError, Strict, check_header, dump, load_object
from synclease.core.errors import BadInputError, SyncleaseError
from synclease.core.record import field, record

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


@record
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
        import hashlib  # lazily: it costs every CLI start that never asks

        digest = hashlib.sha256(f"{self.auth_scope}\n{self.created_at.isoformat()}".encode())
        return digest.hexdigest()[:16]


def _require_bounded(value: str, what: str, limit: int, hint: str) -> None:
    """Refuse an empty ``value`` or one longer than ``limit`` characters (never echoing it)."""
    if not value:
        raise BadInputError(f"{what} is empty", hint=hint)
    if len(value) > limit:
        raise BadInputError(f"{what} is longer than {limit} characters", hint=hint)


def _has_control_or_space(text: str) -> bool:
    return any(ch.isspace() or not ch.isprintable() for ch in text)


def parse_server_url(text: str) -> str:
    """Validate a server URL and return its normal form (lower-case scheme/host, no trailing ``/``).

    Accepts ``http``/``https`` with a host, an optional port and an optional base path. Refuses
    credentials, a query, a fragment, whitespace or control characters.
    """
    raw = text.strip()
    hint = "give a URL like https://sync.example.com"
    _require_bounded(raw, "server URL", MAX_URL_CHARS, hint)
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
    netloc = _normal_netloc(parts, raw, hint)
    if scheme == "http" and not _is_loopback(parts.hostname or ""):
        raise BadInputError(
            f"server URL {raw!r} is plain http:// to a host that is not loopback",
            hint="use https:// (http:// is accepted only for 127.0.0.1, ::1 or localhost)",
        )
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    _require_bounded(token, "token", MAX_TOKEN_CHARS, hint)
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
    return dump(
        {
            "schema": SESSION_SCHEMA,
            "schema_version": SESSION_SCHEMA_VERSION,
            "server_url": session.server_url,
            "token": session.token,
            "principal": session.principal,
            "team": session.team,
            "created_at": to_wire(session.created_at),
        }
    )


def decode_session(data: bytes) -> Session:
    """Parse and re-validate a session document; anything off is :class:`SessionFileError`."""
    try:
        doc = load_object(data, MAX_SESSION_BYTES)
        check_header(doc, SESSION_SCHEMA, SESSION_SCHEMA_VERSION)
        fields = Strict(doc)
        server_url, token = _raw_text(fields, "server_url"), _raw_text(fields, "token")
        principal, team = _raw_optional(fields, "principal"), _raw_optional(fields, "team")
        created_at = fields.time("created_at")
    except CodecError as exc:
        raise SessionFileError(exc.reason, exc.detail) from None
    try:
        return new_session(server_url, token, principal, team, created_at)
    except BadInputError as exc:
        # parse_token's messages never quote the token, so the detail is safe to show.
        raise SessionFileError("invalid_value", exc.message[:120]) from None


def _raw_text(fields: Strict, name: str) -> str:
    """A string field as stored (validated afterwards by :func:`new_session`, empty included)."""
    value = fields.doc.get(name)
    if not isinstance(value, str):
        raise CodecError("bad_field", name)
    return value


def _raw_optional(fields: Strict, name: str) -> str | None:
    return None if fields.doc.get(name) is None else _raw_text(fields, name)
