"""Fresh random identifiers: instance ids (not secret) and control tokens (secret)."""

from __future__ import annotations

import secrets


def new_instance_id() -> str:
    """A fresh random instance id (16 hex digits): names one daemon's lease and lock files."""
    return secrets.token_hex(8)


def new_token() -> str:
    """A fresh control token: lives only in the 0600 lease or record, compared in constant time."""
    return secrets.token_urlsafe(32)
