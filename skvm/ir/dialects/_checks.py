"""Small attribute checkers shared by the dialect definitions.

Each returns None when the attribute is acceptable, or an error message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skvm.ir.attributes import Cap, DictAttr, Keyword, SymbolRef, TypeAttr, UnitAttr, ValueRef

Checker = Callable[[Any], "str | None"]


def string(value: Any) -> str | None:
    """A string."""
    return None if isinstance(value, str) else "expected a string"


def integer(value: Any) -> str | None:
    """An integer (not a bool)."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    return None if ok else "expected an integer"


def boolean(value: Any) -> str | None:
    """A bool."""
    return None if isinstance(value, bool) else "expected true or false"


def unit(value: Any) -> str | None:
    """The unit attribute (a bare key)."""
    return None if isinstance(value, UnitAttr) else "expected a unit attribute (a bare key)"


def symbol(value: Any) -> str | None:
    """A symbol reference."""
    return None if isinstance(value, SymbolRef) else "expected a symbol reference (@name)"


def dictionary(value: Any) -> str | None:
    """A dictionary."""
    return None if isinstance(value, DictAttr) else "expected a dictionary"


def keyword(*choices: str) -> Checker:
    """A bare keyword among ``choices``."""

    def check(value: Any) -> str | None:
        if isinstance(value, Keyword) and value.name in choices:
            return None
        return "expected one of " + ", ".join(choices)

    return check


def list_of(element: Checker, what: str) -> Checker:
    """An array whose elements pass ``element``."""

    def check(value: Any) -> str | None:
        if not isinstance(value, tuple):
            return f"expected a list of {what}"
        for item in value:
            if element(item) is not None:
                return f"expected a list of {what}"
        return None

    return check


def argv_item(value: Any) -> str | None:
    """One argv element: a string, a resource (@x) or a value (%x)."""
    if isinstance(value, (str, SymbolRef, ValueRef)):
        return None
    return "argv elements must be strings, @resources or %values"


def cap(value: Any) -> str | None:
    """A capability (``primitive:Ln``); catalog membership is checked by the verifier."""
    return None if isinstance(value, Cap) else "expected a capability primitive:Ln"


def type_attr(value: Any) -> str | None:
    """A type attribute (``!text``)."""
    return None if isinstance(value, TypeAttr) else "expected a type (!T)"


def string_or_value(value: Any) -> str | None:
    """A string or a value reference."""
    if isinstance(value, (str, ValueRef)):
        return None
    return "expected a string or a %value"


strings = list_of(string, "strings")
argv = list_of(argv_item, "strings, @resources or %values")
caps = list_of(cap, "capabilities")
types = list_of(type_attr, "types")
