"""Which daemon families this process knows: the built-ins, and those a host's modules declare.

A host CLI declares its family in its own process (``synclease.declare_family``) before it calls the
API. The ``synclease`` CLI (and any process reading the same environment) learns of a host's family
from ``SYNCLEASE_FAMILIES``: a comma-separated list of importable module names, each of which declares
its families when imported. A name that is not a module path, or a module that fails to import, is one
:class:`~synclease.core.errors.BadInputError` line. ADR 0019.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from synclease.core.errors import BadInputError

ENV_NAME = "SYNCLEASE_FAMILIES"
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_MAX_MODULES = 16


def module_names(raw: str) -> list[str]:
    """The module names in a ``SYNCLEASE_FAMILIES`` value (empty parts skipped); BadInputError else."""
    names = [part.strip() for part in raw.split(",") if part.strip()]
    bad = [name for name in names if not _MODULE_RE.match(name)]
    if bad or len(names) > _MAX_MODULES:
        raise BadInputError(
            f"{ENV_NAME}={raw!r} is not a list of module names",
            hint=f"give up to {_MAX_MODULES} importable modules separated by commas, e.g. mytool.families",
        )
    return names


def load_declared(env: Mapping[str, str]) -> None:
    """Import every module ``SYNCLEASE_FAMILIES`` names (each declares its families on import)."""
    for name in module_names(env.get(ENV_NAME, "")):
        try:
            __import__(name)  # not importlib: importing it costs every ensure's import
        except BadInputError:
            raise  # e.g. a FamilyError: the declaration itself was refused, already one clear line
        except Exception as exc:  # a host module that fails to import is bad input, never a traceback
            raise BadInputError(
                f"{ENV_NAME} names {name!r}, which could not be imported ({type(exc).__name__}: {exc})",
                hint="fix that module or its PYTHONPATH, or remove it from SYNCLEASE_FAMILIES",
            ) from None
