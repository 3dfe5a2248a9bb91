"""One home per idea (issue 24, ADR 0007): a class name means one thing across the package, and the
ideas that were written twice have one implementation each."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import synclease
from synclease.core.fleet import LeaseStatus, lease_status
from synclease.core.lease import LeaseEntry, SingletonRecord
from tests.test_classify import NOW, make_lease, unreadable


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(synclease.__path__, "synclease."):
        if info.name.endswith(("__main__", ".cli.main")) or ".cli." in info.name:
            continue  # the CLI layer imports typer; its modules are commands, not value types
        names.append(info.name)
    return names


def test_no_two_classes_in_the_package_share_a_name() -> None:
    homes: dict[str, set[str]] = defaultdict(set)
    for name in _modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == name and not attr.startswith("_"):
                homes[attr].add(name)
    shared = {attr: sorted(mods) for attr, mods in homes.items() if len(mods) > 1}
    assert shared == {}


def test_lease_status_is_read_one_way() -> None:
    live = make_lease(renewed_at=NOW - timedelta(seconds=1))
    expired = make_lease(renewed_at=NOW - timedelta(minutes=5))
    path = Path("/r/leases/sync/x.json")
    assert lease_status(None, NOW) is LeaseStatus.MISSING
    assert lease_status(unreadable(), NOW) is LeaseStatus.UNREADABLE
    assert lease_status(LeaseEntry(path, live.instance_id, live), NOW) is LeaseStatus.LIVE
    assert lease_status(LeaseEntry(path, expired.instance_id, expired), NOW) is LeaseStatus.EXPIRED
    # the protocol's boundary: expired only once now is past renewed_at + ttl
    edge = make_lease(renewed_at=NOW - timedelta(seconds=live.ttl_seconds))
    assert lease_status(LeaseEntry(path, edge.instance_id, edge), NOW) is LeaseStatus.LIVE


def test_the_singleton_record_names_the_lease_holder() -> None:
    lease = make_lease()
    record = SingletonRecord.naming(lease, 7, NOW)
    assert (record.family, record.instance_id, record.pid, record.port) == (
        lease.family,
        lease.instance_id,
        lease.pid,
        lease.port,
    )
    assert (record.generation, record.written_at, record.package_version) == (7, NOW, lease.package_version)
