"""The process environment, read once per call: the settings, the package version, failpoints."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from synclease._version import __version__
from synclease.core import settings as parse
from synclease.core.errors import UnsupportedPlatformError
from synclease.core.settings import Settings

#: ``sys.platform`` prefixes we refuse: the root's checks need ``os.O_NOFOLLOW`` and ``os.geteuid``,
#: and process identity needs a POSIX process model.
UNSUPPORTED_PLATFORMS = ("win32", "cygwin", "msys")


def check_platform(platform: str | None = None) -> None:
    """Refuse an unsupported platform in one line, before any call that would fail on it."""
    platform = sys.platform if platform is None else platform
    if platform.startswith(UNSUPPORTED_PLATFORMS):
        raise UnsupportedPlatformError(
            f"synclease does not support this platform yet ({platform})",
            hint="run it on Linux or macOS (on Windows: inside WSL)",
        )


def settings(env: Mapping[str, str] | None = None) -> Settings:
    """The validated settings of this process (``BadInputError`` names a bad variable)."""
    return parse.load(os.environ if env is None else env)


def package_version(env: Mapping[str, str] | None = None) -> str:
    """The version this install reports: ``SYNCLEASE_VERSION`` if set (test matrices), else the package's.

    Read from :mod:`synclease._version` (also hatch's source for the distribution's version) rather
    than ``importlib.metadata``, whose import alone costs ~100 ms of every CLI start."""
    env = os.environ if env is None else env
    return env.get("SYNCLEASE_VERSION", "").strip() or __version__


def failpoint(name: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether the testing failpoint ``name`` is set (unknown names are refused by :func:`settings`)."""
    env = os.environ if env is None else env
    return name in {part.strip() for part in env.get("SYNCLEASE_FAILPOINTS", "").split(",")}
