"""Records behave as the frozen dataclasses they replace (ADR 0012), checked side by side."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from typing import Any

import pytest

from synclease.core.record import FrozenRecordError, as_dict, field, fields, record, replace


@record
class Point:
    x: int
    y: int = 0
    label: str = field(default="", repr=False)
    tags: list[str] = field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class DataPoint:
    x: int
    y: int = 0
    label: str = dataclasses.field(default="", repr=False)
    tags: list[str] = dataclasses.field(default_factory=list)


@record(kw_only=True)
class Checked:
    low: int
    high: int
    span: int = -1

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low above high")
        object.__setattr__(self, "span", self.high - self.low)


@record(frozen=False)
class Tally:
    seen: list[int] = field(default_factory=list)
    total: int = 0


def test_construction_defaults_and_repr_match_a_dataclass() -> None:
    ours, theirs = Point(1, 2, "secret"), DataPoint(1, 2, "secret")
    assert repr(ours) == repr(theirs).replace("DataPoint", "Point") == "Point(x=1, y=2, tags=[])"
    assert (ours.x, ours.y, ours.label, ours.tags) == (theirs.x, theirs.y, theirs.label, theirs.tags)
    assert Point(1) == Point(x=1, y=0)


def test_each_instance_gets_its_own_default_factory_value() -> None:
    first, second = Point(1), Point(2)
    first.tags.append("a")
    assert second.tags == []
    assert not hasattr(Point, "tags")  # as dataclasses: a factory leaves no class attribute


def test_equality_and_hash_are_by_value_and_class() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(2, 1)
    assert Point(1, 2) != DataPoint(1, 2)
    assert hash(Point(1, 2, tags=())) == hash(Point(1, 2, tags=()))  # type: ignore[arg-type]
    assert len({Point(1, tags=()), Point(1, tags=())}) == 1  # type: ignore[arg-type]


def test_frozen_fields_cannot_be_assigned_or_deleted() -> None:
    point = Point(1)
    with pytest.raises(FrozenRecordError, match="'x'"):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(FrozenRecordError):
        del point.x  # type: ignore[misc]
    assert isinstance(FrozenRecordError(), AttributeError)  # what dataclasses' FrozenInstanceError is


def test_a_mutable_record_can_change_and_is_unhashable() -> None:
    tally = Tally()
    tally.total = 3
    tally.seen.append(1)
    assert tally == Tally([1], 3)
    with pytest.raises(TypeError):
        hash(tally)


def test_kw_only_and_post_init() -> None:
    checked = Checked(low=1, high=4)
    assert checked.span == 3
    with pytest.raises(TypeError):
        Checked(1, 4)  # type: ignore[misc]
    with pytest.raises(ValueError, match="low above high"):
        Checked(low=5, high=4)


def test_replace_runs_post_init_and_refuses_unknown_fields() -> None:
    checked = Checked(low=1, high=4)
    assert replace(checked, high=10).span == 9
    with pytest.raises(ValueError):
        replace(checked, low=11)
    with pytest.raises(TypeError, match="no field 'width'"):
        replace(checked, width=3)
    assert replace(Point(1, 2), y=5) == Point(1, 5)


def test_fields_and_as_dict() -> None:
    assert [f.name for f in fields(Point)] == [f.name for f in dataclasses.fields(DataPoint)]
    assert [f.repr for f in fields(Point(1))] == [True, True, False, True]
    assert as_dict(Point(1, 2, "l", ["t"])) == dataclasses.asdict(DataPoint(1, 2, "l", ["t"]))


def test_a_required_field_after_a_default_is_refused() -> None:
    with pytest.raises(TypeError, match="'b' without a default"):

        @record
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]


def test_class_vars_are_not_fields() -> None:
    from typing import ClassVar

    @record
    class WithConstant:
        LIMIT: ClassVar[int] = 3
        value: int

    assert [f.name for f in fields(WithConstant)] == ["value"]
    assert WithConstant(1).LIMIT == 3


def test_a_record_writes_its_own_repr_if_it_likes() -> None:
    @record
    class Quiet:
        token: str

        def __repr__(self) -> str:
            return "Quiet(<hidden>)"

    assert repr(Quiet("x")) == "Quiet(<hidden>)"


def test_records_pickle() -> None:
    assert pickle.loads(pickle.dumps(Point(1, 2, "l", ["t"]))) == Point(1, 2, "l", ["t"])


def test_match_args_allow_positional_patterns() -> None:
    value: Any = Point(3, 4)
    match value:
        case Point(x, y):
            assert (x, y) == (3, 4)
        case _:
            pytest.fail("no match")


def test_importing_records_does_not_import_dataclasses_or_inspect() -> None:
    code = "import sys, synclease.core.record; print(sorted({'dataclasses', 'inspect'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_subclass_of_a_record_is_refused_at_class_definition() -> None:
    """A subclass would lose its parent's fields (``B(1, 2)`` failed while mypy believed ``B.x``)."""
    with pytest.raises(TypeError, match="cannot be subclassed"):

        @record
        class Child(Point):
            z: int = 0

    with pytest.raises(TypeError, match="cannot be subclassed"):

        class Plain(Point):
            pass


def test_a_dataclasses_field_default_is_refused_at_class_definition() -> None:
    """It used to become the field's value (a ``dataclasses.Field`` object), silently."""
    with pytest.raises(TypeError, match=r"field 'tags' uses dataclasses.field\(\)"):

        @record
        class Bag:
            tags: list[str] = dataclasses.field(default_factory=list)


def test_as_json_is_the_one_json_rendering_of_a_record() -> None:
    """Enums by value, datetimes on the wire, paths as text, nested records and tuples recursively."""
    import enum
    from datetime import UTC, datetime
    from pathlib import Path

    from synclease.core.record import as_json

    class Colour(enum.StrEnum):
        RED = "red"

    @record
    class Inner:
        colour: Colour
        at: datetime

    @record
    class Outer:
        path: Path
        inner: Inner
        items: tuple[Inner, ...] = ()
        secret: str = "hidden"

    moment = datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    inner = Inner(Colour.RED, moment)
    rendered = as_json(Outer(Path("/a/b"), inner, (inner,)), omit=("secret",))
    expected_inner = {"colour": "red", "at": "2030-01-02T03:04:05.000006Z"}
    assert rendered == {"path": "/a/b", "inner": expected_inner, "items": [expected_inner]}
    assert list(rendered) == ["path", "inner", "items"]
