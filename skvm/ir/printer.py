"""Print SkIR modules and ops as text.

The printer is the single source of textual truth: ``parse(print(m)) == m``.
Output is deterministic (attributes sorted by key, names as stored, two-space
indentation, one op per line). Registered ops print in their custom form
unless ``generic=True``; unregistered ops always print generically.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from skvm.ir.attributes import (
    Cap,
    DictAttr,
    Keyword,
    SymbolRef,
    TypeAttr,
    UnitAttr,
    ValueRef,
)
from skvm.ir.operation import Module, Op, Region, Value
from skvm.ir.types import Type

_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.$-]*\Z")
_BARE_VALUE = re.compile(r"[A-Za-z0-9_.$-]+\Z")
_BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
#: Words the grammar reserves; keys spelled like them are quoted.
RESERVED = frozenset({"skill", "meta", "resource", "proc", "true", "false", "as", "else", "loc"})

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f\u2028\u2029]')


def _escape_char(m: re.Match) -> str:
    ch = m.group(0)
    return _ESCAPES.get(ch) or f"\\u{ord(ch):04x}"


def quote_string(text: str) -> str:
    """Quote ``text`` as a SkIR string literal (non-ASCII kept as is)."""
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, text) + '"'


def _is_ascii_identifier(text: str) -> bool:
    # Every bare-word pattern above accepts an ASCII identifier; testing for
    # one first is much cheaper than a regex match, and most names are one.
    return text.isascii() and text.isidentifier()


def symbol_text(name: str) -> str:
    """Spell a symbol reference (``@name`` or ``@"odd name"``)."""
    bare = _is_ascii_identifier(name) or _BARE_NAME.match(name)
    return "@" + (name if bare else quote_string(name))


def value_text(name: str) -> str:
    """Spell a value name (``%name`` or ``%"odd name"``)."""
    bare = _is_ascii_identifier(name) or _BARE_VALUE.match(name)
    return "%" + (name if bare else quote_string(name))


def key_text(key: str) -> str:
    """Spell an attribute key, quoting it when it is not a bare identifier."""
    if (_is_ascii_identifier(key) or _BARE_KEY.match(key)) and key not in RESERVED:
        return key
    return quote_string(key)


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _float_text(value: float) -> str:
    text = repr(value)
    if "e" in text or "E" in text:
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        return f"{mantissa}e{exponent}"
    if "inf" in text or "nan" in text:
        raise ValueError(f"float attribute {text} has no textual form")
    return text


def _array_text(value: tuple) -> str:
    return "[" + ", ".join([attr_text(v) for v in value]) + "]"


def attr_text(value: Any) -> str:
    """Print an attribute value."""
    spell = _SPELLING.get(type(value))
    if spell is not None:
        return spell(value)
    return _attr_text_by_kind(value)


def _attr_text_by_kind(value: Any) -> str:
    # Subclasses of the attribute types (an IntEnum, a str subclass) are
    # spelled by the first kind they belong to, in this order.
    if isinstance(value, bool):
        return _bool_text(value)
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, tuple):
        return _array_text(value)
    if isinstance(value, DictAttr):
        return dict_text(value)
    if isinstance(value, SymbolRef):
        return symbol_text(value.name)
    if isinstance(value, ValueRef):
        return value_text(value.name)
    if isinstance(value, Keyword):
        return value.name
    if isinstance(value, Cap):
        return str(value)
    if isinstance(value, TypeAttr):
        return "!" + str(value.type)
    if isinstance(value, UnitAttr):
        return "unit"
    raise TypeError(f"cannot print attribute of type {type(value).__name__}")


def dict_text(d: DictAttr, skip: Collection[str] = ()) -> str:
    """Print a dictionary ``{k = v, flag}``; empty string when nothing is left."""
    parts = []
    for key, value in d.items:
        if key in skip:
            continue
        if isinstance(value, UnitAttr):
            parts.append(key_text(key))
        else:
            parts.append(f"{key_text(key)} = {attr_text(value)}")
    if not parts:
        return ""
    return "{" + ", ".join(parts) + "}"


#: Exact attribute type -> its spelling: one dictionary lookup instead of a
#: chain of isinstance tests for every value printed.
_SPELLING: dict[type, Any] = {
    bool: _bool_text,
    str: quote_string,
    int: str,
    float: _float_text,
    tuple: _array_text,
    DictAttr: dict_text,
    SymbolRef: lambda value: symbol_text(value.name),
    ValueRef: lambda value: value_text(value.name),
    Keyword: lambda value: value.name,
    Cap: str,
    TypeAttr: lambda value: "!" + str(value.type),
    UnitAttr: lambda value: "unit",
}


def loc_text(op: Op) -> str:
    """The `` loc("file":l:c)`` suffix of an op, or empty."""
    if op.loc is None:
        return ""
    return f" loc({quote_string(op.loc.file)}:{op.loc.line}:{op.loc.col})"


class Printer:
    """Prints ops and modules; keeps track of value types for the generic form."""

    def __init__(self, generic: bool = False, indent: str = "  "):
        self.generic = generic
        self.indent_unit = indent
        self.lines: list[str] = []
        self.types: dict[str, Type] = {}

    # ---- entry points ----------------------------------------------------------
    def module(self, module: Module) -> str:
        """Print a whole module."""
        self.lines = [f"skill {symbol_text(module.sym_name)} {{"]
        for op in module.body.ops:
            self._op(op, 1)
        self.lines.append("}")
        return "\n".join(self.lines) + "\n"

    def op(self, op: Op, depth: int = 0) -> str:
        """Print one op (and its regions)."""
        self.lines = []
        self._op(op, depth)
        return "\n".join(self.lines)

    # ---- ops ------------------------------------------------------------------------
    def _op(self, op: Op, depth: int) -> None:
        for value in op.results:
            self.types[value.name] = value.type
        pad = self.indent_unit * depth
        if self.generic or not op.registered:
            self._generic(op, depth, pad)
        elif op.name == "skill.meta":
            body = dict_text(op.attributes)
            self.lines.append(pad + "meta" + (" " + body if body else "") + loc_text(op))
        elif op.name == "skill.resource":
            self._resource(op, pad)
        elif op.name == "skill.proc":
            self._proc(op, depth, pad)
        else:
            self._custom(op, depth, pad)

    def _results_prefix(self, op: Op) -> str:
        if not op.results:
            return ""
        return ", ".join([value_text(v.name) for v in op.results]) + " = "

    def _custom(self, op: Op, depth: int, pad: str) -> None:
        parts = [self._results_prefix(op) + op.name]
        shown: set[str] = set()
        for name in op.positional:
            value = op.attributes.get(name)
            # A %value or a dictionary cannot stand positionally (the grammar
            # would read it as an operand or the attribute dictionary).
            if value is None or isinstance(value, (ValueRef, DictAttr)):
                break
            parts.append(attr_text(value))
            shown.add(name)
        if op.operands:
            parts.append("(" + ", ".join([value_text(n) for n in op.operands]) + ")")
        rest = dict_text(op.attributes, shown)
        if rest:
            parts.append(rest)
        head = " ".join(parts)
        tail = ""
        if op.results:
            tail = " : " + ", ".join([str(v.type) for v in op.results])
        tail += loc_text(op)
        if not op.regions:
            self.lines.append(pad + head + tail)
            return
        self._regions_custom(op, depth, pad, head, tail)

    def _regions_custom(self, op: Op, depth: int, pad: str, head: str, tail: str) -> None:
        keywords = op.region_keywords
        line = pad + head
        for i, region in enumerate(op.regions):
            keyword = keywords[i] if i < len(keywords) else ""
            if i > 0:
                line = pad + "}" + (f" {keyword}" if keyword else "")
            opener = self._region_args(region)
            self.lines.append(line + " " + opener + "{")
            for inner in region.ops:
                self._op(inner, depth + 1)
        self.lines.append(pad + "}" + tail)

    def _region_args(self, region: Region) -> str:
        if not region.args:
            return ""
        for v in region.args:
            self.types[v.name] = v.type
        return "as (" + ", ".join(self._typed(v) for v in region.args) + ") "

    @staticmethod
    def _typed(v: Value) -> str:
        return f"{value_text(v.name)}: {v.type}"

    def _resource(self, op: Op, pad: str) -> None:
        name = op.attr("sym_name", "")
        path = op.attr("path", "")
        rest = dict_text(op.attributes, frozenset({"sym_name", "path"}))
        text = f"resource {symbol_text(name)} = {quote_string(path)}"
        if rest:
            text += " " + rest
        self.lines.append(pad + text + loc_text(op))

    def _proc(self, op: Op, depth: int, pad: str) -> None:
        region = op.regions[0] if op.regions else Region()
        for v in region.args:
            self.types[v.name] = v.type
        params = ", ".join(self._typed(v) for v in region.args)
        head = f"proc {symbol_text(op.attr('sym_name', ''))}({params})"
        result_types = [t.type for t in op.attr("result_types", ())]
        if "result_types" in op.attributes:
            if len(result_types) == 1:
                head += f" -> {result_types[0]}"
            else:
                head += " -> (" + ", ".join(str(t) for t in result_types) + ")"
        rest = dict_text(op.attributes, frozenset({"sym_name", "result_types"}))
        if rest:
            head += " " + rest
        self.lines.append(pad + head + " {")
        for inner in region.ops:
            self._op(inner, depth + 1)
        self.lines.append(pad + "}" + loc_text(op))

    def _generic(self, op: Op, depth: int, pad: str) -> None:
        operand_types = ", ".join(
            str(self.types[n]) if n in self.types else "any" for n in op.operands
        )
        head = (
            self._results_prefix(op)
            + quote_string(op.name)
            + "("
            + ", ".join(value_text(n) for n in op.operands)
            + ")"
        )
        attributes = dict_text(op.attributes)
        if attributes:
            head += " " + attributes
        tail = (
            f" : ({operand_types}) -> ("
            + ", ".join(str(v.type) for v in op.results)
            + ")"
            + loc_text(op)
        )
        if not op.regions:
            self.lines.append(pad + head + tail)
            return
        line = pad + head + " ("
        for i, region in enumerate(op.regions):
            if i > 0:
                line = pad + "}, "
            self.lines.append(line + self._region_args(region) + "{")
            for inner in region.ops:
                self._op(inner, depth + 1)
        self.lines.append(pad + "})" + tail)


def print_module(module: Module, generic: bool = False) -> str:
    """Print ``module`` as SkIR text (custom form unless ``generic``)."""
    return Printer(generic=generic).module(module)


def print_op(op: Op, generic: bool = False, depth: int = 0) -> str:
    """Print a single op (with its regions) as SkIR text."""
    return Printer(generic=generic).op(op, depth)
