"""SkIR value types: ``text``, ``path``, ``json`` / ``json<"schema">``, ``bool``,
``int``, ``list<T>`` and ``any``."""

from __future__ import annotations

import json

import attrs

#: Names of the types that take no parameter.
SIMPLE_TYPE_NAMES = ("text", "path", "json", "bool", "int", "any")
_SIMPLE_TYPE_SET = frozenset(SIMPLE_TYPE_NAMES)


@attrs.frozen
class Type:
    """A SkIR type: a name and, for ``list`` and ``json``, one parameter.

    ``list`` takes an element :class:`Type`; ``json`` optionally takes a JSON
    Schema as a string (``json<"{\\"type\\": \\"object\\"}">``).
    """

    name: str
    param: Type | str | None = None

    def __str__(self) -> str:
        if self.param is None:
            return self.name
        if isinstance(self.param, Type):
            return f"{self.name}<{self.param}>"
        from skvm.ir.printer import quote_string  # the printer imports this module

        return f"{self.name}<{quote_string(self.param)}>"

    @property
    def schema(self) -> dict | None:
        """The JSON Schema of a ``json<...>`` type, parsed; None otherwise."""
        if self.name != "json" or not isinstance(self.param, str):
            return None
        return json.loads(self.param)


TEXT = Type("text")
PATH = Type("path")
JSON = Type("json")
BOOL = Type("bool")
INT = Type("int")
ANY = Type("any")


def list_of(element: Type) -> Type:
    """The type ``list<element>``."""
    return Type("list", element)


def json_of(schema: str) -> Type:
    """The type ``json<"schema">``."""
    return Type("json", schema)


def is_assignable(source: Type, target: Type) -> bool:
    """Whether a value of type ``source`` may be used where ``target`` is expected.

    ``any`` converts both ways (it is the type of unknown model output);
    ``json<schema>`` is a ``json``; ``text`` and ``path`` convert to each other
    because a path is spelled as text; lists convert element-wise.
    """
    if source == target or source.name == "any" or target.name == "any":
        return True
    if source.name == "json" and target.name == "json":
        return target.param is None or source.param == target.param
    if {source.name, target.name} == {"text", "path"}:
        return True
    if source.name == "list" and target.name == "list":
        assert isinstance(source.param, Type) and isinstance(target.param, Type)
        return is_assignable(source.param, target.param)
    if target.name == "json" and target.param is None:
        # Every value has a JSON rendering.
        return True
    return False


def element_type(collection: Type) -> Type:
    """The type of one element when iterating over ``collection``."""
    if collection.name == "list" and isinstance(collection.param, Type):
        return collection.param
    return ANY


def validate_type(t: Type) -> str | None:
    """Return an error message when ``t`` is not a well-formed type."""
    if t.name in _SIMPLE_TYPE_SET:
        if t.param is None:
            return None
        if t.name == "json" and isinstance(t.param, str):
            try:
                schema = json.loads(t.param)
            except ValueError as exc:
                return f"json type schema is not valid JSON: {exc}"
            if not isinstance(schema, (dict, bool)):
                return "json type schema must be a JSON object"
            return None
        return f"type '{t.name}' takes no parameter"
    if t.name == "list":
        if not isinstance(t.param, Type):
            return "list type needs an element type: list<T>"
        return validate_type(t.param)
    return f"unknown type '{t.name}'"
