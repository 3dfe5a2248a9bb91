"""Bind the first free loopback port of a range, starting at a hint and wrapping inside the range."""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TypeVar

from synclease.errors import SyncleaseError

T = TypeVar("T")


def port_order(hint: int, ports: range) -> list[int]:
    """Pure: every port of ``ports`` once, from ``hint`` (if inside) to the end, then from the start."""
    if hint not in ports:
        hint = ports.start
    offset = hint - ports.start
    ordered = list(ports)
    return ordered[offset:] + ordered[:offset]


def bind_first_free(hint: int, ports: range, factory: Callable[[int], T]) -> T:
    for port in port_order(hint, ports):
        try:
            return factory(port)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise
    raise SyncleaseError(
        f"no free loopback port in {ports.start}-{ports.stop - 1}",
        hint="run `synclease auth doctor` to see what holds the ports",
    )
