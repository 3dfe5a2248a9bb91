"""The public Python API for host CLIs (``from synclease import ensure``; documented in docs/api.md).

Four calls, each what a CLI command does, in-process and typed: :func:`ensure` (``sync start``),
:func:`enqueue` (``sync push``), :func:`survey` (what ``auth doctor`` shows) and :func:`reset`
(``auth doctor --reset``); and for a host's own daemon family (ADR 0019), :func:`declare_family` and
:func:`serve` (run a daemon of it in this process). Each reads the same environment variables as
the CLI; ``home`` overrides ``SYNCLEASE_HOME``. Every expected failure is a
:class:`~synclease.core.errors.SyncleaseError` (``one_line()`` is the message the CLI would print);
nothing here prints, exits or renders (``serve`` runs a daemon, which logs).

Importing this module costs what ``ensure`` needs and no more: the survey and the reset import their
machinery (the process table, the sweep) when first called.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from synclease.core.actor import Actor
from synclease.core.errors import BadInputError
from synclease.core.family import Family, FamilyError, get_family
from synclease.core.record import replace as replace_options
from synclease.services import context
from synclease.services.ensure import ensure as _ensure
from synclease.services.reuse import EnsureResult

if TYPE_CHECKING:
    from synclease.core.fleet import Survey
    from synclease.services.push import Pushed
    from synclease.services.reset import ResetResult

PathLike = str | os.PathLike[str]
#: The families synclease runs itself (``ensure``, ``sync run``, ``synclease dashboard``).
BUILT_IN_FAMILIES = frozenset({"sync", "dashboard"})
#: A lease's ``package_version`` is at most this long (lease-v1 §4.2).
MAX_VERSION_CHARS = 64


def _env(home: PathLike | None) -> Mapping[str, str] | None:
    return None if home is None else {**os.environ, "SYNCLEASE_HOME": os.fspath(home)}


def _actor(by: str) -> Actor:
    try:
        return Actor(os.getpid(), by)
    except ValueError:
        raise BadInputError(
            f"by={by!r} is not a command name",
            hint="pass one to four lowercase words naming your command, e.g. by='mytool build'",
        ) from None


def ensure(*, home: PathLike | None = None, by: str = "api ensure") -> EnsureResult:
    """Make sure one healthy sync daemon serves the root, and return it (``reused`` says whether it
    was already there). With a healthy singleton this is two small file reads and one loopback
    request; else it spawns one and waits for it (``DaemonStartError`` if it never serves).

    ``by`` names the caller in the ledger (a few lowercase words: ``"mytool build"``)."""
    ctx = context.load(env=_env(home))
    return _ensure(ctx.root, ctx.version, ctx.settings.port_range, ctx.clock, by=_actor(by))


def enqueue(
    event_type: str, data: Any = None, *, home: PathLike | None = None, by: str = "api enqueue"
) -> Pushed:
    """Queue one event durably (``data``: any JSON value); logged in, make sure a daemon uploads it."""
    return enqueue_many([(event_type, data)], home=home, by=by)


def enqueue_many(
    events: Iterable[tuple[str, Any]], *, home: PathLike | None = None, by: str = "api enqueue"
) -> Pushed:
    """Queue events in one transaction, all or none (``BadInputError`` names a bad one)."""
    from synclease.services.push import push

    return push(context.load(env=_env(home)), list(events), _actor(by))


def survey(*, home: PathLike | None = None, family: str = "sync") -> Survey:
    """The doctor's view, read-only: every listener on ``family``'s range with its ``cleanup_class``
    and reason, and this root's leases of that family judged. Creates, signals and deletes nothing."""
    from synclease.services.survey import survey as _survey

    ctx = context.load(create=False, env=_env(home))
    store, ports = ctx.governed(family)
    return _survey(store, ctx.clock, ports)


def reset(
    *, home: PathLike | None = None, force: bool = False, by: str = "api reset", family: str = "sync"
) -> ResetResult:
    """Sweep ``safe_auto`` daemons and stale leases of ``family`` (and ``operator_required`` ones with
    ``force``), exactly as ``auth doctor --reset`` does; the result lists ``swept``, ``skipped`` and
    ``failed``."""
    from synclease.services.reset import reset as _reset

    ctx = context.load(env=_env(home))
    store, ports = ctx.governed(family)
    return _reset(store, ctx.clock, ports, force=force, by=_actor(by))


def serve(family: Family, *, home: PathLike | None = None, replace: bool = False, version: str = "0") -> int:
    """Run a daemon of a declared ``family`` in this process until it retires, then return 0.

    It binds the first free port of the family's range, holds a lease in the family's lease
    directory, records itself as the family's singleton (``AlreadyRunningError`` while a healthy one
    serves, unless ``replace``), serves its self-report at the family's health path and a polite
    ``POST /api/retire``, and retires when idle for the family's idle constant, superseded, asked,
    or on SIGTERM/SIGINT (its handlers are installed for the call and restored after). ``version``
    is what its lease and self-report give as ``package_version``."""
    from synclease.daemons.hosted.daemon import HostedOptions, serve_family

    if family.name in BUILT_IN_FAMILIES or get_family(family.name) != family:
        raise FamilyError(
            f"serve runs a daemon of a family you declared, not {family.name!r} as given",
            hint="pass what declare_family returned; the sync daemon is ensure() or `synclease sync run`",
        )
    if not 0 < len(version) <= MAX_VERSION_CHARS or not version.isprintable():
        raise BadInputError(
            f"version={version[:80]!r} is not a version", hint="pass e.g. '1.4.2' (1-64 printable characters)"
        )
    ctx = context.load(env=_env(home))
    opts = HostedOptions(
        family=family, root=ctx.root, settings=ctx.settings, clock=ctx.clock, version=version
    )
    return serve_family(replace_options(opts, replace=replace))
