"""Which ports a daemon tries, in which order: from a hint, wrapping inside its range."""

from __future__ import annotations


def port_order(hint: int, ports: range) -> list[int]:
    """Every port of ``ports`` once, from ``hint`` (if inside) to the end, then from the start."""
    if hint not in ports:
        hint = ports.start
    offset = hint - ports.start
    ordered = list(ports)
    return ordered[offset:] + ordered[:offset]
