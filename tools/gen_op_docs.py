"""Generate the op reference of docs/skir.md from the op registry.

Run ``.venv/bin/python tools/gen_op_docs.py`` after changing a dialect; it
rewrites the text between the ``BEGIN GENERATED OPS`` / ``END GENERATED OPS``
markers. ``--check`` exits 1 when the file is out of date (the test suite
runs it that way).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

from skvm.ir import dialects
from skvm.ir.operation import OP_REGISTRY, Effect, Op, Trait

DOC = Path(__file__).resolve().parents[1] / "docs" / "skir.md"
BEGIN = "<!-- BEGIN GENERATED OPS (tools/gen_op_docs.py) -->"
END = "<!-- END GENERATED OPS -->"


def _count(spec) -> str:
    if isinstance(spec, int):
        return str(spec)
    low, high = spec
    if high is None:
        return f"{low}+"
    return str(low) if low == high else f"{low}–{high}"


def _flags(value, enum_type) -> str:
    names = [m.name.lower() for m in enum_type if m.value and m in value and m.name]
    return ", ".join(names) or "none"


def _checker(check) -> str:
    doc = (inspect.getdoc(check) or "").strip()
    if doc.startswith("A bare keyword") or check.__qualname__.startswith("keyword"):
        closure = [c.cell_contents for c in (check.__closure__ or ())]
        choices = next((c for c in closure if isinstance(c, tuple)), ())
        return "one of " + " \\| ".join(f"`{c}`" for c in choices)
    if check.__qualname__.startswith("list_of"):
        closure = [c.cell_contents for c in (check.__closure__ or ())]
        what = next((c for c in closure if isinstance(c, str)), "items")
        return f"list of {what}"
    return doc.rstrip(".").lower() or check.__name__


def _dialect_example(dialect: str) -> str:
    module = getattr(dialects, dialect)
    doc = inspect.getdoc(module) or ""
    _, _, rest = doc.partition("::")
    lines = []
    for line in rest.split("\n")[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    return "\n".join(lines).strip("\n")


def _op_section(cls: type[Op]) -> list[str]:
    out = [f"#### `{cls.op_name}`", "", (inspect.getdoc(cls) or cls.summary).split("\n")[0], ""]
    rows = [
        ("operands", _count(cls.operand_count)),
        ("results", _count(cls.result_count)),
        ("regions", _count(cls.region_count)),
        ("positional attributes", ", ".join(f"`{p}`" for p in cls.positional) or "none"),
        ("required attributes", ", ".join(f"`{a}`" for a in cls.required_attrs) or "none"),
        ("traits", _flags(cls.traits, Trait)),
        ("effects", _flags(cls.effects, Effect)),
    ]
    out += ["| property | value |", "| --- | --- |"]
    out += [f"| {k} | {v} |" for k, v in rows]
    if cls.attr_checks:
        out += ["", "| attribute | kind |", "| --- | --- |"]
        out += [f"| `{k}` | {_checker(v)} |" for k, v in sorted(cls.attr_checks.items())]
    out.append("")
    return out


def generate() -> str:
    """The generated block (markers included)."""
    lines = [BEGIN, "", "_Generated from the op registry; do not edit by hand._", ""]
    lines += ["### Attributes any op may carry", "", "| attribute | kind |", "| --- | --- |"]
    lines += [
        f"| `{k}` | {_checker(v)} |" for k, v in sorted(dialects.COMMON_ATTR_CHECKS.items())
    ]
    lines.append("")
    for dialect in dialects.DIALECTS:
        ops = sorted(n for n in OP_REGISTRY if n.split(".", 1)[0] == dialect)
        module = getattr(dialects, dialect)
        title = (inspect.getdoc(module) or "").split("\n")[0]
        lines += [f"### Dialect `{dialect}`", "", title, ""]
        lines += ["| op | summary |", "| --- | --- |"]
        lines += [f"| `{n}` | {OP_REGISTRY[n].summary} |" for n in ops]
        lines.append("")
        example = _dialect_example(dialect)
        if example:
            lines += ["Examples (custom syntax):", "", "```", example, "```", ""]
        for name in ops:
            lines += _op_section(OP_REGISTRY[name])
    lines.append(END)
    return "\n".join(lines)


def updated(text: str) -> str:
    """``text`` with the generated block replaced."""
    head, sep, rest = text.partition(BEGIN)
    if not sep:
        raise SystemExit(f"{DOC}: marker {BEGIN!r} not found")
    _, sep, tail = rest.partition(END)
    if not sep:
        raise SystemExit(f"{DOC}: marker {END!r} not found")
    return head + generate() + tail


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with --check, verify) the generated part of docs/skir.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the doc is out of date")
    opts = parser.parse_args(argv)
    text = DOC.read_text(encoding="utf-8")
    new = updated(text)
    if opts.check:
        if new != text:
            print(f"{DOC} is out of date: run tools/gen_op_docs.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
