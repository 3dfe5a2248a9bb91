"""Pure version ordering for "newer wins": the numeric release part of a version string."""

from __future__ import annotations

import re

from synclease.core.constants import PROTOCOL_VERSION

_RELEASE = re.compile(r"^\s*v?(\d+(?:\.\d+)*)")


def release_key(version: str) -> tuple[int, ...]:
    """``"3.2.10rc1"`` → ``(3, 2, 10)``; unparsable → ``()`` which sorts oldest. Trailing zeros dropped."""
    match = _RELEASE.match(version)
    if not match:
        return ()
    parts = [int(p) for p in match.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def is_older(version: str, than: str) -> bool:
    return release_key(version) < release_key(than)


def protocol_compatible(protocol_version: int, ours: int = PROTOCOL_VERSION) -> bool:
    return protocol_version == ours
