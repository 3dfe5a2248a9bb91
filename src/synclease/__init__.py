"""synclease: background sync daemons that hold heartbeat leases and are reaped only on proof."""

from __future__ import annotations

__all__ = ["package_version"]


def package_version() -> str:
    """The version this install reports: ``SYNCLEASE_VERSION`` if set, else the installed metadata."""
    import os
    from importlib import metadata

    override = os.environ.get("SYNCLEASE_VERSION", "").strip()
    if override:
        return override
    try:
        return metadata.version("synclease")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "0.0.0"
