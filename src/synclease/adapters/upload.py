"""Upload one batch: ``POST {server}/v1/events`` with the session's bearer token, via :mod:`http.client`.

Network trouble is data, never an exception: the result is an :class:`UploadOutcome` whose ``kind`` is

* ``ok`` — a 2xx; the server has the batch (the caller deletes it);
* ``auth_failed`` — 401/403; the token is wrong or revoked (report it, do not retry hot);
* ``retryable`` — 408, 429, 5xx, refused/reset connections, timeouts, TLS and protocol errors;
* ``rejected`` — anything else (3xx, other 4xx, a bad server URL): the server refused this request.
  Events are never dropped here: a 4xx is a *permanent* refusal of the batch's content, which the
  worker splits until it finds the poison event and, after a bounded number of refusals of that event
  alone, dead-letters it (:mod:`synclease.core.delivery`); anything else is kept and retried with backoff.

The token goes only into the ``Authorization`` header. It is never logged, and every ``reason`` is
scrubbed of it before it leaves this module. Redirects are not followed (they would carry the header).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from synclease.core.delivery import scrub
from synclease.core.events import Event, OutcomeKind, classify_status, encode_batch
from synclease.core.record import record

if TYPE_CHECKING:
    import http.client

EVENTS_PATH = "/v1/events"
#: At most this much of a response body is read (and ignored); the status says what we need.
MAX_RESPONSE_BYTES = 64 * 1024
#: A ``Retry-After`` longer than this is not believed.
MAX_RETRY_AFTER_SECONDS = 3600.0


@record
class UploadOutcome:
    kind: OutcomeKind
    #: HTTP status when the server answered, else ``None``.
    status: int | None
    #: Short human reason, never containing the token, e.g. ``"HTTP 503 Service Unavailable"``.
    reason: str
    #: Seconds from a ``Retry-After`` header on a retryable answer, if the server gave one.
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    @property
    def auth_failed(self) -> bool:
        return self.kind == "auth_failed"

    @property
    def retryable(self) -> bool:
        return self.kind == "retryable"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date; not worth parsing, the backoff still applies
    if not 0 <= seconds <= MAX_RETRY_AFTER_SECONDS:
        return None
    return seconds


def _network_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    ssl = sys.modules.get("ssl")  # imported only by an https upload: no TLS error without it
    if ssl is not None and isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or type(exc).__name__}"
    client = sys.modules.get("http.client")
    if client is not None and isinstance(exc, client.HTTPException):
        return f"bad HTTP response ({type(exc).__name__})"
    if isinstance(exc, OSError):
        return f"network error: {exc.strerror or type(exc).__name__}"
    return type(exc).__name__


def _connection(server_url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    # Imported by the first upload, not by the daemon's start: ``http.client`` pulls in ``email`` and
    # ``ssl`` loads libssl, megabytes an idle daemon without a session never needs (ADR 0015).
    import http.client

    parts = urlsplit(server_url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("server URL is not http(s) with a host")
    path = parts.path.rstrip("/") + EVENTS_PATH
    if parts.scheme == "https":
        import ssl

        context = ssl.create_default_context()
        return http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=context), path
    return http.client.HTTPConnection(host, parts.port, timeout=timeout), path


def upload_batch(server_url: str, token: str, events: Sequence[Event], timeout: float) -> UploadOutcome:
    """POST ``events`` to ``{server_url}/v1/events``. Never raises for network or server problems.

    ``timeout`` bounds each socket operation (connect, send, each read), not the whole exchange.
    """
    import http.client  # see _connection

    try:
        conn, path = _connection(server_url, timeout)
    except ValueError as exc:
        return UploadOutcome("rejected", None, scrub(f"bad server URL: {exc}", token))
    body = encode_batch(events)
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": f"Bearer {token}",
        "User-Agent": "synclease",
        "Content-Length": str(len(body)),
    }
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        status = response.status
        phrase = response.reason or ""
        retry_after = _retry_after(response.getheader("Retry-After"))
        response.read(MAX_RESPONSE_BYTES)
    except (OSError, http.client.HTTPException) as exc:
        return UploadOutcome("retryable", None, scrub(_network_reason(exc), token))
    except ValueError as exc:  # e.g. a header value http.client refuses; the message is not trusted
        return UploadOutcome("rejected", None, f"invalid request ({type(exc).__name__})")
    finally:
        conn.close()
    kind = classify_status(status)
    return UploadOutcome(
        kind,
        status,
        scrub(f"HTTP {status} {phrase}".strip(), token),
        retry_after if kind == "retryable" else None,
    )
