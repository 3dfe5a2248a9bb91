"""Records: ``@record`` classes are this package's one way to declare a value type.

A record is what a frozen :func:`dataclasses.dataclass` is (typed fields, defaults, ``field()`` with
``default_factory`` and ``repr=False``, ``kw_only``, ``__post_init__``, value equality and hashing,
frozen unless ``frozen=False``) and type checkers read it as one (:func:`typing.dataclass_transform`).
Two things a dataclass allows are refused at class definition with a :class:`TypeError` (ADR 0020),
because a record would get them silently wrong: subclassing a record (with or without ``@record``),
and a :func:`dataclasses.field` default (use this module's :func:`field`).
:func:`replace`, :func:`fields` and :func:`as_dict` stand in for their :mod:`dataclasses` namesakes;
:func:`as_json` is the one way to render a record as JSON (ADR 0020).

Why not dataclasses (ADR 0012): on Python 3.11 defining a frozen dataclass costs ~0.5 ms, because
six generated methods are each compiled from source, and importing :mod:`dataclasses` imports
:mod:`inspect`. ``from synclease import ensure`` needs 16 records: 16 ms of a 33 ms import, and 9 ms
of every CLI start. A record compiles one method, its ``__init__`` (instances are built as fast as a
dataclass's); equality, hashing, ``repr`` and freezing are shared functions over the field names.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any, TypeVar, dataclass_transform, overload

from synclease.core.clock import to_wire

T = TypeVar("T")
R = TypeVar("R")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FrozenRecordError(AttributeError):
    """Assigning to (or deleting) a field of a frozen record."""


class Field:
    """One field of a record: its name, default or ``default_factory``, and whether ``repr`` shows it."""

    __slots__ = ("default", "default_factory", "kw_only", "name", "repr")

    def __init__(self, default: Any = MISSING, default_factory: Any = MISSING, repr: bool = True) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("a field takes a default or a default_factory, not both")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.kw_only = False

    @property
    def required(self) -> bool:
        return self.default is MISSING and self.default_factory is MISSING

    def __repr__(self) -> str:
        return f"Field({self.name!r})"


@overload
def field(*, default: T, repr: bool = True) -> T: ...
@overload
def field(*, default_factory: Callable[[], T], repr: bool = True) -> T: ...
@overload
def field(*, repr: bool = True) -> Any: ...
def field(*, default: Any = MISSING, default_factory: Any = MISSING, repr: bool = True) -> Any:
    """A field with a default, a ``default_factory`` (called per instance) or hidden from ``repr``."""
    return Field(default, default_factory, repr)


# --- the shared methods -------------------------------------------------------------------------


def _values(self: Any) -> tuple[Any, ...]:
    return tuple([getattr(self, name) for name in self.__record_names__])


def _eq(self: Any, other: object) -> Any:  # bool, or NotImplemented for another class
    if other.__class__ is not self.__class__:
        return NotImplemented
    return bool(_values(self) == _values(other))


def _hash(self: Any) -> int:
    return hash(_values(self))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.__record_fields__ if f.repr)
    return f"{self.__class__.__qualname__}({shown})"


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenRecordError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenRecordError(f"cannot delete field {name!r}")


# --- building a record --------------------------------------------------------------------------


def _refuse_subclass(cls: type, /, **kwargs: Any) -> None:
    """A record's ``__init_subclass__``: a subclass would silently lose its parent's fields."""
    raise TypeError(
        f"{cls.__qualname__}: a record cannot be subclassed (its fields would be lost); "
        "declare a new @record with the fields it needs, or hold the other record in a field"
    )


def _foreign_field(cls: type, name: str, given: object) -> None:
    """Refuse a :func:`dataclasses.field` default: a record would take the ``Field`` as the value."""
    kind = type(given)
    if kind.__name__ == "Field" and kind.__module__ == "dataclasses":
        raise TypeError(
            f"{cls.__qualname__}: field {name!r} uses dataclasses.field(); "
            "use synclease.core.record.field() (same default, default_factory and repr)"
        )


def _is_classvar(annotation: object) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return isinstance(text, str) and text.split("[", 1)[0].rsplit(".", 1)[-1] == "ClassVar"


def _collect(cls: type, kw_only: bool) -> list[Field]:
    found: list[Field] = []
    # Not inspect.get_annotations: importing inspect is what records avoid (3.11-3.13 keep them here).
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
        if _is_classvar(annotation):
            continue
        given = cls.__dict__.get(name, MISSING)
        _foreign_field(cls, name, given)
        spec = given if isinstance(given, Field) else Field(default=given)
        spec.name = name
        spec.kw_only = kw_only
        if isinstance(given, Field):
            if spec.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, spec.default)
        found.append(spec)
    return found


def _init_source(cls: type, specs: list[Field], frozen: bool) -> tuple[str, dict[str, Any]]:
    """The source of ``__init__`` and the names it refers to (defaults, factories)."""
    names: dict[str, Any] = {"__record_set": object.__setattr__, "__record_missing": MISSING}
    params: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    seen_default = False
    for spec in specs:
        if spec.default_factory is not MISSING:
            names[f"__factory_{spec.name}"] = spec.default_factory
            param = f"{spec.name}=__record_missing"
            body.append(f"  if {spec.name} is __record_missing: {spec.name} = __factory_{spec.name}()")
        elif spec.default is not MISSING:
            names[f"__default_{spec.name}"] = spec.default
            param = f"{spec.name}=__default_{spec.name}"
        else:
            param = spec.name
            if seen_default and not spec.kw_only:
                raise TypeError(f"{cls.__qualname__}: field {spec.name!r} without a default follows one with")
        seen_default = seen_default or not spec.required
        (keyword if spec.kw_only else params).append(param)
        if frozen:
            body.append(f"  __record_set(self, {spec.name!r}, {spec.name})")
        else:
            body.append(f"  self.{spec.name} = {spec.name}")
    if hasattr(cls, "__post_init__"):
        body.append("  self.__post_init__()")
    signature = ", ".join(["self", *params, *(["*", *keyword] if keyword else [])])
    return f"def __init__({signature}):\n" + "\n".join(body or ["  pass"]) + "\n", names


def _build(cls: type[T], kw_only: bool, frozen: bool) -> type[T]:
    specs = _collect(cls, kw_only)
    source, names = _init_source(cls, specs, frozen)
    namespace: dict[str, Any] = {}
    exec(source, names, namespace)  # noqa: S102 - our own generated source, as dataclasses does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    attributes: dict[str, Any] = {
        "__init__": init,
        "__record_fields__": tuple(specs),
        "__record_names__": tuple(spec.name for spec in specs),
        "__eq__": _eq,
        "__repr__": _repr,
        "__match_args__": tuple(spec.name for spec in specs if not spec.kw_only),
        "__init_subclass__": classmethod(_refuse_subclass),
    }
    if frozen:
        attributes.update(__hash__=_hash, __setattr__=_frozen_setattr, __delattr__=_frozen_delattr)
    else:
        attributes["__hash__"] = None
    for name, value in attributes.items():
        if name in ("__eq__", "__repr__", "__hash__") and name in cls.__dict__:
            continue  # the class wrote its own
        setattr(cls, name, value)
    return cls


@overload
def record(cls: type[T], /) -> type[T]: ...
@overload
def record(*, kw_only: bool = False, frozen: bool = True) -> Callable[[type[T]], type[T]]: ...
@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def record(
    cls: type[T] | None = None, /, *, kw_only: bool = False, frozen: bool = True
) -> type[T] | Callable[[type[T]], type[T]]:
    """Make ``cls`` a record (see the module docstring); ``@record`` or ``@record(kw_only=True)``."""
    if cls is None:
        return lambda inner: _build(inner, kw_only, frozen)
    return _build(cls, kw_only, frozen)


# --- working with records -----------------------------------------------------------------------


def fields(obj: Any) -> tuple[Field, ...]:
    """The fields of a record (class or instance), in order."""
    return obj.__record_fields__  # type: ignore[no-any-return]


def replace(obj: R, /, **changes: Any) -> R:
    """A copy of the record ``obj`` with ``changes`` (its ``__post_init__`` runs again)."""
    for name in changes:
        if name not in obj.__record_names__:  # type: ignore[attr-defined]
            raise TypeError(f"{obj.__class__.__qualname__} has no field {name!r}")
    values = {name: getattr(obj, name) for name in obj.__record_names__}  # type: ignore[attr-defined]
    return obj.__class__(**{**values, **changes})


def as_dict(obj: Any) -> dict[str, Any]:
    """The fields of the record ``obj`` by name (one level: nested records stay records)."""
    return {name: getattr(obj, name) for name in obj.__record_names__}


def json_value(value: Any) -> Any:
    """``value`` as JSON holds it: an enum as its value, a datetime as :func:`~synclease.core.clock.to_wire`,
    a path as its text, a record as :func:`as_json`, tuples and lists as lists, dicts value by value."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return to_wire(value)
    if hasattr(type(value), "__fspath__"):  # a path (no os or pathlib import: the core is pure and quick)
        return value.__fspath__()
    if hasattr(type(value), "__record_names__"):
        return as_json(value)
    if isinstance(value, tuple | list):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {key: json_value(item) for key, item in value.items()}
    return value


def as_json(obj: Any, /, *, omit: Collection[str] = ()) -> dict[str, Any]:
    """The record ``obj`` as a JSON object: every field (less ``omit``) by name, in field order, its
    value rendered by :func:`json_value`. The one renderer: a record's ``to_json`` calls it, then adds
    or renames what its document's shape asks for."""
    return {name: json_value(getattr(obj, name)) for name in obj.__record_names__ if name not in omit}
