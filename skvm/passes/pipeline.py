"""Pipeline text: ``a,b{k=v k2=x,y},require<effects>,print<dep-graph>``.

Grammar (MLIR/LLVM style)::

    pipeline := element (',' element)*
    element  := NAME ['{' option (' ' option)* '}']
              | ('require' | 'invalidate' | 'print') '<' NAME '>'
    option   := KEY ['=' VALUE]          (VALUE may hold commas: a list)

Names of named pipelines (``O0``, ``O1``, ``O2``, ``default``) expand in
place. Options are typed by the pass class's ``attrs`` fields (``str``,
``int``, ``float``, ``bool``, ``tuple[str, ...]`` and optional forms); keys
are kebab-case spellings of the field names. :func:`print_pipeline` prints a
parsed pipeline back canonically (options that differ from their defaults,
in declaration order).
"""

from __future__ import annotations

import typing
from typing import Any

import attrs

from skvm.diagnostics import Location, SkvmError
from skvm.passes.base import ModulePass

PIPELINE_FILE = "<pipeline>"
PSEUDO_PASSES = ("require", "invalidate", "print")


@attrs.frozen
class PseudoPass:
    """``require<a>``, ``invalidate<a>`` or ``print<a>``."""

    kind: str
    analysis: str

    @property
    def name(self) -> str:
        """The canonical spelling."""
        return f"{self.kind}<{self.analysis}>"


PipelineElement = ModulePass | PseudoPass


def _error(col: int, message: str) -> SkvmError:
    return SkvmError.at(Location(PIPELINE_FILE, 1, col), message)


def _split_top_level(text: str, sep: str, base_col: int) -> list[tuple[str, int]]:
    """Split ``text`` on ``sep`` outside ``{}``/``<>``; keep each piece's column."""
    pieces: list[tuple[str, int]] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if ch in "{<":
            depth += 1
        elif ch in "}>":
            depth -= 1
            if depth < 0:
                raise _error(base_col + i, f"unbalanced '{ch}' in pipeline")
        elif ch == sep and depth == 0:
            pieces.append((text[start:i], base_col + start))
            start = i + 1
    if depth != 0:
        raise _error(base_col + len(text), "unterminated '{' or '<' in pipeline")
    pieces.append((text[start:], base_col + start))
    return pieces


def _field_kind(field: attrs.Attribute) -> str:
    t = field.type
    text = t if isinstance(t, str) else getattr(t, "__name__", str(t))
    if not isinstance(t, str):
        text = str(t).replace("typing.", "")
        if isinstance(t, type):
            text = t.__name__
    text = text.replace(" ", "")
    optional = text.endswith("|None") or text.startswith("Optional[")
    core = text.removesuffix("|None")
    if core.startswith("tuple[str"):
        return "list"
    if core in ("int", "float", "bool", "str"):
        return core + ("?" if optional else "")
    return "str"


def _convert(kind: str, raw: str | None, key: str, col: int) -> Any:
    base = kind.rstrip("?")
    if raw is None:
        if base == "bool":
            return True
        raise _error(col, f"option '{key}' needs a value")
    try:
        if base == "int":
            return int(raw)
        if base == "float":
            return float(raw)
        if base == "bool":
            lowered = raw.lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(raw)
        if base == "list":
            return tuple(item for item in raw.split(",") if item)
    except ValueError:
        raise _error(col, f"option '{key}' expects {base}, got '{raw}'") from None
    return raw


def option_fields(cls: type[ModulePass]) -> dict[str, attrs.Attribute]:
    """Kebab-case option name -> attrs field, for a pass class."""
    return {f.name.replace("_", "-"): f for f in attrs.fields(cls)}


def _parse_options(cls: type[ModulePass], text: str, col: int) -> dict[str, Any]:
    fields = option_fields(cls)
    values: dict[str, Any] = {}
    offset = 0
    for raw in text.split(" "):
        item_col = col + offset
        offset += len(raw) + 1
        if not raw:
            continue
        key, eq, value = raw.partition("=")
        field = fields.get(key) or fields.get(key.replace("_", "-"))
        if field is None:
            known = ", ".join(sorted(fields)) or "none"
            raise _error(item_col, f"pass '{cls.name}' has no option '{key}' (options: {known})")
        values[field.name] = _convert(_field_kind(field), value if eq else None, key, item_col)
    return values


def parse_pipeline(text: str) -> list[PipelineElement]:
    """Parse pipeline text into pass instances and pseudo-passes."""
    from skvm.passes.registry import ANALYSES, NAMED_PIPELINES, PASSES

    elements: list[PipelineElement] = []
    text = text.strip()
    if not text:
        return elements
    for piece, col in _split_top_level(text, ",", 1):
        stripped = piece.strip()
        col += len(piece) - len(piece.lstrip())
        if not stripped:
            raise _error(col, "empty pass name in pipeline")
        if stripped in NAMED_PIPELINES:
            elements.extend(parse_pipeline(NAMED_PIPELINES[stripped]))
            continue
        head, brace, rest = stripped.partition("{")
        if "<" in head and not brace:
            kind, _, inner = head.partition("<")
            if kind not in PSEUDO_PASSES or not inner.endswith(">"):
                raise _error(col, f"unknown pseudo-pass '{head}'")
            analysis = inner[:-1]
            if analysis not in ANALYSES:
                known = ", ".join(sorted(ANALYSES))
                raise _error(col, f"unknown analysis '{analysis}' (analyses: {known})")
            elements.append(PseudoPass(kind, analysis))
            continue
        cls = PASSES.get(head)
        if cls is None:
            from difflib import get_close_matches

            close = get_close_matches(head, list(PASSES) + list(NAMED_PIPELINES), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise _error(col, f"unknown pass '{head}'{hint}")
        options: dict[str, Any] = {}
        if brace:
            if not rest.endswith("}"):
                raise _error(col + len(stripped), f"options of '{head}' must end with '}}'")
            options = _parse_options(cls, rest[:-1], col + len(head) + 1)
        try:
            elements.append(cls(**options))
        except (TypeError, ValueError) as exc:
            raise _error(col, f"bad options for '{head}': {exc}") from None
    return elements


def _option_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def element_text(element: PipelineElement) -> str:
    """The canonical text of one pipeline element."""
    if isinstance(element, PseudoPass):
        return element.name
    parts = []
    for field in attrs.fields(type(element)):
        value = getattr(element, field.name)
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        if value == default:
            continue
        parts.append(f"{field.name.replace('_', '-')}={_option_text(value)}")
    if not parts:
        return element.name
    return element.name + "{" + " ".join(parts) + "}"


def print_pipeline(elements: typing.Sequence[PipelineElement]) -> str:
    """Print a parsed pipeline canonically."""
    return ",".join(element_text(e) for e in elements)
