"""synclease: background sync daemons that hold heartbeat leases and are reaped only on proof."""

from __future__ import annotations

__all__ = ["package_version"]


def package_version() -> str:
    """The version this install reports: ``SYNCLEASE_VERSION`` if set (test matrices), else the package's.

    Read from :mod:`synclease._version` (also hatch's source for the distribution's version) rather
    than ``importlib.metadata``, whose import alone costs ~100 ms of every CLI start."""
    import os

    from synclease._version import __version__

    return os.environ.get("SYNCLEASE_VERSION", "").strip() or __version__
