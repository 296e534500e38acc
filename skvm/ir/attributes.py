"""SkIR attribute values.

Plain Python values stand for the common attributes: ``str``, ``int``,
``float``, ``bool``, ``tuple`` (an array). Small frozen classes stand for the
rest: symbol references (``@x``), value references inside attributes
(``%x``), bare keywords (``script``, ``must``), capabilities
(``reason.logic:L2``), the unit attribute (a key with no value, ``lazy``),
types in attribute position (``!text``) and dictionaries.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Union

import attrs

from skvm.ir.types import Type


@attrs.frozen
class SymbolRef:
    """A reference to a symbol: a resource or a procedure (``@name``)."""

    name: str


@attrs.frozen
class ValueRef:
    """A use of an SSA value inside an attribute (``%name``), e.g. in an argv."""

    name: str


@attrs.frozen
class Keyword:
    """A bare identifier used as an enumerated value (``script``, ``must``)."""

    name: str


@attrs.frozen(order=True)
class Cap:
    """A capability requirement: a primitive at a level (``reason.logic:L2``)."""

    primitive: str
    level: int

    def __str__(self) -> str:
        return f"{self.primitive}:L{self.level}"


@attrs.frozen
class UnitAttr:
    """The unit attribute: present or absent, no value (printed as a bare key)."""


UNIT = UnitAttr()


@attrs.frozen
class TypeAttr:
    """A type used as an attribute value (``!list<path>``)."""

    type: Type


@attrs.frozen
class DictAttr:
    """An immutable dictionary attribute; entries are kept sorted by key."""

    items: tuple[tuple[str, Attribute], ...] = ()

    @classmethod
    def of(cls, mapping: Mapping[str, Any] | None = None, **kwargs: Any) -> DictAttr:
        """Build a dictionary from a mapping, converting values with :func:`to_attr`."""
        if kwargs:
            merged = dict(mapping or {})
            merged.update(kwargs)
            mapping = merged
        elif not mapping:
            return cls()
        if cls is DictAttr:
            return dict_attr_of(mapping)
        items = [(k, v if type(v) in _ATOMS else to_attr(v)) for k, v in mapping.items()]
        items.sort(key=_key)
        return cls(tuple(items))

    def get(self, key: str, default: Any = None) -> Any:
        """Look up ``key``."""
        for k, v in self.items:
            if k == key:
                return v
        return default

    def __contains__(self, key: str) -> bool:
        for k, _ in self.items:
            if k == key:
                return True
        return False

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self.items)

    def __len__(self) -> int:
        return len(self.items)

    def to_dict(self) -> dict[str, Any]:
        """A plain ``dict`` view (values unchanged)."""
        return dict(self.items)


Attribute = Union[
    str, int, float, bool, tuple, SymbolRef, ValueRef, Keyword, Cap, UnitAttr, TypeAttr, DictAttr
]


#: Plain values that are attributes as they are (checked by exact type: the hot path).
_SCALARS = frozenset({str, int, float, bool})


#: DictAttr.of's construction steps (see there).
_new_object = object.__new__
_set_field = object.__setattr__
#: The key of a dictionary entry (``itemgetter``: no Python call per entry sorted).
_key = operator.itemgetter(0)


def to_attr(value: Any) -> Attribute:
    """Convert a Python value (lists, dicts, types) into an attribute value."""
    if type(value) in _ATOMS:
        return value
    if type(value) is tuple and all(type(v) in _ATOMS for v in value):
        return value  # already an array attribute (the usual case): no copy
    if isinstance(value, (list, tuple)):
        return tuple(to_attr(v) for v in value)
    if isinstance(value, dict):
        return DictAttr.of(value)
    if isinstance(value, Type):
        return TypeAttr(value)
    if value is None:
        raise TypeError("None is not an attribute value; omit the attribute instead")
    return value


def to_python(value: Attribute) -> Any:
    """Convert an attribute into plain JSON-like Python data (for tools and reports)."""
    if isinstance(value, tuple):
        return [to_python(v) for v in value]
    if isinstance(value, DictAttr):
        return {k: to_python(v) for k, v in value.items}
    if isinstance(value, (SymbolRef,)):
        return "@" + value.name
    if isinstance(value, ValueRef):
        return "%" + value.name
    if isinstance(value, Keyword):
        return value.name
    if isinstance(value, Cap):
        return str(value)
    if isinstance(value, UnitAttr):
        return True
    if isinstance(value, TypeAttr):
        return str(value.type)
    return value


def walk_attr(value: Attribute) -> Iterator[Attribute]:
    """Yield ``value`` and every attribute nested inside it."""
    yield value
    if isinstance(value, tuple):
        children: Iterator[Attribute] = iter(value)
    elif isinstance(value, DictAttr):
        children = (v for _, v in value.items)
    else:
        return
    for v in children:
        # Leaves are yielded directly: a nested generator per string of an
        # argv would cost more than the walk itself.
        if type(v) in _SCALARS:
            yield v
        else:
            yield from walk_attr(v)


#: Values that are attributes as they are (exact types: the hot path of to_attr).
_ATOMS = _SCALARS | {SymbolRef, ValueRef, Keyword, Cap, UnitAttr, TypeAttr, DictAttr}
#: The types of the values that :func:`to_attr` may return unchanged.
_ATOMS_OR_TUPLE = _ATOMS | {tuple}


def dict_attr_of(mapping: Mapping[str, Any]) -> DictAttr:
    """``DictAttr.of(mapping)``, for the hot paths that build many (``Op.build``)."""
    if _holds_only_attributes(mapping.values()):
        # Every value is an attribute already (the usual case, and the front
        # end builds ops by the ten thousand): no per-entry Python code. Keys
        # are unique, so sorting the pairs compares keys only. The instance
        # is made as the attrs ``__init__`` would (one field, no converter,
        # set as a frozen class sets it) without the cost of calling it.
        made = _new_object(DictAttr)
        _set_field(made, "items", tuple(sorted(mapping.items())))
        return made
    items = [(k, v if type(v) in _ATOMS else to_attr(v)) for k, v in mapping.items()]
    items.sort(key=_key)
    return DictAttr(tuple(items))


def _holds_only_attributes(values: Iterable[Any]) -> bool:
    """Whether :func:`to_attr` returns every one of ``values`` unchanged (no conversion needed).

    True for atoms and tuples of atoms, found with set operations rather
    than a call per value.
    """
    kinds = set(map(type, values))
    if kinds <= _ATOMS:
        return True
    return kinds <= _ATOMS_OR_TUPLE and all(
        _ATOMS.issuperset(map(type, value)) for value in values if type(value) is tuple
    )
