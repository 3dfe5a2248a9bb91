"""Daemon families as data: a name, a port range, a lease directory, a health path, an idle constant.

A family is declared once per process with :func:`declare_family` (``synclease.declare_family`` in the
public API, docs/api.md). The two built-in families, ``sync`` and ``dashboard``, are declared below
through that same call; a host CLI declares its own (``examples/hostcli/``). Two families never share a
port: a declaration whose range meets a declared one is refused with a :class:`FamilyError`, so a port
names at most one family, and "is this port inside the family's range" has one home, :meth:`Family.owns`.

The registry is process memory, not I/O (the core stays pure): it only grows, and a declaration that
repeats an existing one exactly is a no-op, so importing a host's declaring module twice is harmless.
See ADR 0019.
"""

from __future__ import annotations

import re
from typing import Final

from synclease.core import constants
from synclease.core.errors import BadInputError
from synclease.core.record import record

_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_PATH_RE: Final = re.compile(r"^/[A-Za-z0-9/_.-]{0,127}$")
#: Ports a family may use: unprivileged, below the usual ephemeral range's top.
_PORT_FLOOR: Final = 1024
_PORT_CEILING: Final = 65536


class FamilyError(BadInputError):
    """A family declaration is refused (bad name, bad range, overlap, or a name taken differently)."""


@record(kw_only=True)
class Family:
    """One daemon family. ``lease_dir`` is relative to the daemon root (``leases/<name>``)."""

    name: str
    port_range: range
    lease_dir: str
    health_path: str
    #: A daemon of the family with no work for this long retires; None: it never retires for idleness.
    idle_retirement_seconds: float | None

    def owns(self, port: int) -> bool:
        """Is ``port`` inside this family's range? (the one home of that question)."""
        return port in self.port_range

    def owns_range(self, ports: range) -> bool:
        """Is every port of ``ports`` (step 1; empty is fine) inside this family's range?"""
        if ports.step != 1:
            return False
        return not len(ports) or (ports.start >= self.port_range.start and ports.stop <= self.port_range.stop)

    def check_range(self, ports: range) -> range:
        """``ports`` when :meth:`owns_range`, else ValueError (a caller's bug, never input)."""
        if not self.owns_range(ports):
            raise ValueError(f"ports {ports} are not inside the {self.name} family range {self.port_range}")
        return ports

    @property
    def text_range(self) -> str:
        return f"{self.port_range.start}-{self.port_range.stop - 1}"


_DECLARED: dict[str, Family] = {}


def _refuse(what: str, hint: str) -> FamilyError:
    return FamilyError(f"cannot declare daemon family: {what}", hint=hint)


def _validated(family: Family) -> Family:
    name, ports = family.name, family.port_range
    if not _NAME_RE.match(name):
        raise _refuse(f"name {name!r} is not a short lowercase word", "use 1-32 of a-z, 0-9, _ or -")
    if ports.step != 1 or len(ports) == 0 or ports.start < _PORT_FLOOR or ports.stop > _PORT_CEILING:
        raise _refuse(
            f"{name}: port range {ports} is empty or outside {_PORT_FLOOR}-{_PORT_CEILING - 1}",
            "pass range(start, stop) with start < stop, unprivileged ports",
        )
    if not _PATH_RE.match(family.health_path):
        raise _refuse(
            f"{name}: health path {family.health_path!r} is not a plain absolute path", "e.g. /api/health"
        )
    idle = family.idle_retirement_seconds
    if idle is not None and not idle > 0:
        raise _refuse(f"{name}: idle_retirement_seconds must be positive", "e.g. 900.0 (15 minutes)")
    return family


def declare_family(
    name: str,
    port_range: range,
    *,
    idle_retirement_seconds: float | None,
    health_path: str = "/api/health",
) -> Family:
    """Declare a daemon family for this process and return it.

    Refused (:class:`FamilyError`, one line and a hint) when the name is not a short lowercase word,
    the range is empty or privileged, or the range overlaps a declared family's. Declaring the very
    same family again returns it; the same name with another definition is refused.
    """
    family = _validated(
        Family(
            name=name,
            port_range=port_range,
            lease_dir=f"leases/{name}",
            health_path=health_path,
            idle_retirement_seconds=None
            if idle_retirement_seconds is None
            else float(idle_retirement_seconds),
        )
    )
    known = _DECLARED.get(name)
    if known is not None:
        if known == family:
            return known
        raise _refuse(f"{name!r} is already declared differently", "declare each family once, in one module")
    for other in _DECLARED.values():
        if (
            family.port_range.start < other.port_range.stop
            and other.port_range.start < family.port_range.stop
        ):
            raise _refuse(
                f"{name} range {family.text_range} overlaps the {other.name} family's {other.text_range}",
                f"pick ports outside every declared range ({', '.join(f.text_range for f in declared())})",
            )
    _DECLARED[name] = family
    return family


def declared() -> tuple[Family, ...]:
    """Every declared family, in declaration order (the built-ins first)."""
    return tuple(_DECLARED.values())


def family_named(name: str) -> Family | None:
    return _DECLARED.get(name)


def family_of_port(port: int) -> Family | None:
    """The family whose range holds ``port`` (at most one: ranges never overlap)."""
    return next((f for f in _DECLARED.values() if f.owns(port)), None)


def get_family(name: str) -> Family:
    """The declared family ``name``, or a :class:`FamilyError` that lists the declared ones."""
    family = _DECLARED.get(name)
    if family is None:
        names = ", ".join(f.name for f in declared())
        raise FamilyError(
            f"no daemon family named {name!r} is declared (declared: {names})",
            hint="name a declared family, or list the module that declares it in SYNCLEASE_FAMILIES",
        )
    return family


#: The built-in families, declared through the public call a host uses.
SYNC_FAMILY: Final = declare_family(
    constants.SYNC,
    constants.SYNC_PORT_RANGE,
    idle_retirement_seconds=constants.SYNC_DAEMON_IDLE_RETIREMENT_SECONDS,
)
DASHBOARD_FAMILY: Final = declare_family(
    constants.DASHBOARD,
    constants.DASHBOARD_PORT_RANGE,
    idle_retirement_seconds=None,  # a dashboard serves until it is stopped (ADR 0005)
)
