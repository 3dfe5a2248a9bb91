"""A tiny loopback HTTP client for the control plane. Errors are data, never exceptions."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any

from synclease.constants import LOOPBACK

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Reply:
    status: int | None
    document: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def request(
    port: int,
    method: str,
    path: str,
    *,
    timeout: float,
    token: str | None = None,
    body: Any = None,
) -> Reply:
    """One request to ``127.0.0.1:port``; the token goes in a header, never in the URL."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    headers = {"Connection": "close", "Accept": "application/json"}
    payload: bytes | None = None
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read(MAX_BODY_BYTES + 1)
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        return Reply(None, error=f"{type(exc).__name__}: {exc}"[:200])
    finally:
        conn.close()
    if len(raw) > MAX_BODY_BYTES:
        return Reply(status, error="response too large")
    try:
        return Reply(status, json.loads(raw.decode("utf-8")) if raw else None)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Reply(status, error="response is not JSON")


def get_json(port: int, path: str, timeout: float) -> Reply:
    return request(port, "GET", path, timeout=timeout)


def post(port: int, path: str, token: str, timeout: float, body: Any = None) -> Reply:
    return request(port, "POST", path, timeout=timeout, token=token, body=body if body is not None else {})
