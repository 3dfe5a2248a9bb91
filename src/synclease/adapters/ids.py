"""Fresh random identifiers: instance ids (not secret) and control tokens (secret).

Both are read from :func:`os.urandom`, the source :mod:`secrets` reads (``token_hex`` and
``token_urlsafe`` are these very expressions); :mod:`secrets` itself is not imported because it
imports :mod:`hmac` and so OpenSSL, ~3.5 MB of an idle daemon's resident memory.
"""

from __future__ import annotations

import base64
import os

TOKEN_BYTES = 32


def new_instance_id() -> str:
    """A fresh random instance id (16 hex digits): names one daemon's lease and lock files."""
    return os.urandom(8).hex()


def new_token() -> str:
    """A fresh control token (43 URL-safe base64 characters, 256 random bits): lives only in the 0600
    lease or record, compared in constant time."""
    return base64.urlsafe_b64encode(os.urandom(TOKEN_BYTES)).rstrip(b"=").decode("ascii")
