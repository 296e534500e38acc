"""Run-time values: checking and converting them at op boundaries.

SkIR values are plain Python data at run time: ``text`` and ``path`` are
``str``, ``bool`` is ``bool``, ``int`` is ``int``, ``json`` is any JSON value
(``json<schema>`` is validated with ``jsonschema``), ``list<T>`` is a
``list`` whose elements are checked as ``T``, ``any`` is anything.

Producers are lenient where the source is text (a command's stdout, a model's
answer): :func:`coerce` parses ``"true"`` into a bool, a JSON array into a
list, and so on. :func:`check` then enforces the declared type and raises
:class:`TypeMismatch` with a message the interpreter turns into a located
diagnostic.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from skvm.ir import types as T


class TypeMismatch(Exception):
    """A value does not have the type the IR declares."""


def to_text(value: Any) -> str:
    """Render a value as text (for argv, prompts, files): JSON for structured values."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _parse_json(text: str) -> Any:
    """Parse JSON from text, tolerating a Markdown fence around it."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    return json.loads(body)


_TRUE = frozenset({"true", "yes", "y", "1", "ok", "pass", "passed"})
_FALSE = frozenset({"false", "no", "n", "0", "fail", "failed", "none", ""})


def _coerce_bool(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().strip(".!\"'").lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return value


def _coerce_int(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return value
    return value


def _coerce_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return _parse_json(value)
        except ValueError:
            return value
    return value


def _coerce_list(value: Any, element: T.Type) -> Any:
    if isinstance(value, str):
        try:
            parsed = _parse_json(value)
        except ValueError:
            # Command output: one element per non-empty line.
            parsed = [line for line in value.splitlines() if line.strip()]
        value = parsed
    if isinstance(value, list):
        return [coerce(v, element) for v in value]
    return value


def _coerce_text(value: Any) -> Any:
    return value if isinstance(value, str) else to_text(value)


def _coerce_path(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else to_text(value)


# Type name -> how to turn a loosely typed value into that type.
_COERCIONS: dict[str, Callable[[Any], Any]] = {
    "text": _coerce_text,
    "path": _coerce_path,
    "bool": _coerce_bool,
    "int": _coerce_int,
    "json": _coerce_json,
    "any": lambda v: v,
}


def coerce(value: Any, t: T.Type) -> Any:
    """Convert ``value`` towards type ``t`` where that is unambiguous (never raises)."""
    if t.name == "list":
        assert isinstance(t.param, T.Type)
        return _coerce_list(value, t.param)
    return _COERCIONS.get(t.name, lambda v: v)(value)


_JSON_SCALARS = (str, int, float, bool, type(None))


def _is_json(value: Any) -> bool:
    if isinstance(value, _JSON_SCALARS):
        return True
    if isinstance(value, list):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


# Type name -> predicate the value must satisfy.
_CHECKS: dict[str, Callable[[Any], bool]] = {
    "text": lambda v: isinstance(v, str),
    "path": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "json": _is_json,
    "any": lambda v: True,
}


def validate_schema(value: Any, schema: dict | bool) -> None:
    """Validate ``value`` against a JSON Schema; raise TypeMismatch with the reason."""
    import jsonschema

    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise TypeMismatch(f"does not match its schema at {where}: {exc.message}") from None
    except jsonschema.SchemaError as exc:
        raise TypeMismatch(f"has an invalid schema: {exc.message}") from None


def check(value: Any, t: T.Type) -> Any:
    """Return ``value`` if it has type ``t``; raise :class:`TypeMismatch` otherwise."""
    if t.name == "list":
        if not isinstance(value, list):
            raise TypeMismatch(f"expected {t}, got {describe(value)}")
        assert isinstance(t.param, T.Type)
        for index, item in enumerate(value):
            try:
                check(item, t.param)
            except TypeMismatch as exc:
                raise TypeMismatch(f"element {index}: {exc}") from None
        return value
    predicate = _CHECKS.get(t.name)
    if predicate is None:
        raise TypeMismatch(f"unknown type {t}")
    if not predicate(value):
        raise TypeMismatch(f"expected {t}, got {describe(value)}")
    schema = t.schema
    if schema is not None:
        validate_schema(value, schema)
    return value


def coerce_and_check(value: Any, t: T.Type) -> Any:
    """:func:`coerce` then :func:`check`."""
    return check(coerce(value, t), t)


def describe(value: Any) -> str:
    """A short description of a value for error messages."""
    kind = {str: "text", bool: "bool", int: "int", float: "number", list: "list", dict: "object"}
    name = kind.get(type(value), type(value).__name__)
    return f"{name} {preview(value, 40)}"


def preview(value: Any, limit: int = 200) -> str:
    """The value as text, truncated to ``limit`` characters."""
    text = to_text(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# json.dumps with options builds an encoder per call; one is enough.
_DIGEST_ENCODER = json.JSONEncoder(sort_keys=True, default=str, ensure_ascii=False)


def digest(values: Any) -> str:
    """A stable short hash of a value (for traces)."""
    data = _DIGEST_ENCODER.encode(values)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def json_schema_for(t: T.Type) -> dict:
    """A JSON Schema describing values of type ``t`` (what a model must answer)."""
    if t.name == "list":
        assert isinstance(t.param, T.Type)
        return {"type": "array", "items": json_schema_for(t.param)}
    if t.schema is not None:
        return t.schema if isinstance(t.schema, dict) else {}
    return dict(_SCHEMAS.get(t.name, {}))


_SCHEMAS: dict[str, dict] = {
    "text": {"type": "string"},
    "path": {"type": "string"},
    "bool": {"type": "boolean"},
    "int": {"type": "integer"},
    "json": {},
    "any": {},
}
