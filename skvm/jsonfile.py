"""JSON files checked against a schema shipped in ``skvm/schemas/``, with located diagnostics.

Environment descriptions (:mod:`skvm.environment`) and target profiles
(:mod:`skvm.targets.profile`) are read the same way: the file's text is read
(a missing, unreadable or non-UTF-8 file is a diagnostic), parsed (a JSON
error is located at its line and column), then validated against the
package's schema; each schema error is located at the key it concerns by
:func:`locate`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from skvm.diagnostics import Location, SkvmError, SourceManager


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``skvm/schemas/<name>``, as shipped in the package."""
    text = resources.files("skvm").joinpath("schemas", name).read_text("utf-8")
    return json.loads(text)


@functools.cache
def schema_validator(name: str) -> Any:
    """A checked ``jsonschema`` validator (with format checks) for schema ``name``."""
    # jsonschema costs tens of milliseconds to import: only files and explicit
    # validation need it, never a run on built-in data.
    import jsonschema

    schema = load_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_errors(name: str, data: Any) -> list[Any]:
    """The errors of ``data`` against schema ``name``, sorted by JSON path then message."""
    return sorted(
        schema_validator(name).iter_errors(data), key=lambda e: (list(map(str, e.path)), e.message)
    )


def locate(text: str | None, origin: str, path: Iterable[Any]) -> Location | None:
    """Best-effort line:col of the JSON value at ``path`` in ``text`` (``None`` without text)."""
    if text is None:
        return None
    # Walk the keys in order so that a repeated key name resolves to the one
    # under the right parent; good enough for shallow documents.
    pos = 0
    for part in path:
        if isinstance(part, int):
            # Step over ``part`` items of the array that starts after ``pos``.
            start = text.find("[", pos)
            if start < 0:
                break
            pos = start + 1
            for _ in range(part):
                comma = text.find(",", pos)
                if comma < 0:
                    break
                pos = comma + 1
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            continue
        m = re.compile(r'"%s"\s*:' % re.escape(str(part))).search(text, pos)
        if m is None:
            break
        pos = m.start()
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return Location(origin, line, col)


def read_json(
    path: str | Path, what: str, origin: str | None = None, sources: SourceManager | None = None
) -> tuple[Any, str]:
    """Read and parse the JSON file ``path``; return ``(data, text)``.

    ``what`` names the file in messages (``"environment file"``); ``origin``
    (default ``str(path)``) names it in locations. When ``sources`` is given
    the text is registered there so that later diagnostics quote the line.

    Raises:
        SkvmError: the file cannot be read, is not UTF-8 or is not JSON.
    """
    origin = str(path) if origin is None else origin
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SkvmError.at(None, f"cannot read {what} '{origin}': {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SkvmError.at(Location(origin, 1, 1), f"{what} is not UTF-8 text") from None
    if sources is not None:
        sources.add(origin, text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SkvmError.at(
            Location(origin, exc.lineno, exc.colno), f"{what} is not valid JSON: {exc.msg}"
        ) from None
    return data, text
