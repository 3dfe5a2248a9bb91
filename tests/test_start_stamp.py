"""One start-stamp value (issue 24, ADR 0020): every record that knows a process start reads it as one
:class:`StartStamp`, derived in one place (:class:`StartOf` over :func:`start_stamp`), while the wire
documents keep their flat fields (their byte-identity is held by test_lease_codec, test_doctor_schema
and test_dashboard)."""

from __future__ import annotations

import importlib
import inspect

from synclease.core.dashboard_record import DashboardRecord
from synclease.core.fleet import IdentityRecord, Listener
from synclease.core.health import HealthReport
from synclease.core.identity import ProcessFacts, StartOf, StartStamp, same_start, start_stamp
from synclease.core.lease import LeaseRecord
from synclease.core.record import fields, replace
from tests.test_classify import make_lease
from tests.test_one_home import _modules

#: The records that carry a process start, and the flat fields it is read from.
EXPECTED = {
    DashboardRecord: ("process_start_time", "process_start_ticks", "boot_id"),
    IdentityRecord: ("process_start_time", "process_start_ticks", "boot_id"),
    Listener: ("pid_start_time", "pid_start_ticks", "boot_id"),
    HealthReport: ("process_start_time", "process_start_ticks", "boot_id"),
    ProcessFacts: ("start_time", "start_ticks", "boot_id"),
    LeaseRecord: ("process_start_time", "process_start_ticks", "boot_id"),
}


def _records_with_a_start() -> dict[type, object]:
    found: dict[type, object] = {}
    for name in _modules():
        for value in vars(importlib.import_module(name)).values():
            if inspect.isclass(value) and value.__module__ == name and hasattr(value, "__record_fields__"):
                if "start" in vars(value):
                    found[value] = vars(value)["start"]
    return found


def test_every_record_start_is_one_start_of_over_its_own_fields() -> None:
    found = _records_with_a_start()
    assert set(found) == set(EXPECTED)
    for cls, descriptor in found.items():
        assert isinstance(descriptor, StartOf), f"{cls.__name__}.start is not a StartOf"
        assert descriptor.names == EXPECTED[cls]
        assert set(descriptor.names) <= {f.name for f in fields(cls)}


def test_start_stamp_is_none_exactly_when_the_wall_clock_start_is_unknown() -> None:
    assert start_stamp(None, 12, "b") is None
    assert start_stamp(5.0, None, None) == StartStamp(5.0)
    assert start_stamp(5.0, 12, "b") == StartStamp(5.0, 12, "b")


def test_records_read_their_flat_fields_as_the_same_stamp() -> None:
    listener = Listener(9401, 10, 5.0, 12, "b")
    facts = ProcessFacts(True, 5.0, 12, "b", 1000)
    assert listener.start == facts.start == StartStamp(5.0, 12, "b")
    assert same_start(listener.start, facts.start)
    assert Listener(9401).start is None
    assert ProcessFacts(True, None, 12, "b").start is None


def test_the_start_of_a_class_is_its_descriptor() -> None:
    assert isinstance(Listener.start, StartOf)


def test_wire_is_the_inverse_of_start_of() -> None:
    stamp = StartStamp(5.0, 12, "b")
    assert list(stamp.wire()) == ["process_start_time", "process_start_ticks", "boot_id"]
    assert replace(make_lease(), **stamp.wire()).start == stamp
    assert replace(make_lease(), **StartStamp(6.5).wire()).start == StartStamp(6.5)
