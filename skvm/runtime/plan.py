"""The execution plan ``skvm-run --dry-run`` prints: what runs as code, what as model calls,
what in parallel, without running anything.

Each executable op becomes one line, indented by nesting, with its kind:

* ``code``: commands, scripts, file ops, checks (``tool.*``, ``check.*``);
* ``model``: ``llm.step`` (agent loop), ``llm.gen`` / ``llm.judge`` (one call);
* ``jit``: solidified code with a model fallback;
* ``parallel`` / ``map``: concurrent groups (with their width);
* ``control``: ``ctl.if``, ``ctl.for_each``, ``ctl.call``, ``env.if``.

Called procedures are expanded once, where they are first called.
"""

from __future__ import annotations

from collections import Counter

from skvm.ir.attributes import SymbolRef, ValueRef
from skvm.ir.operation import Module, Op, Region
from skvm.runtime.interpreter import DEFAULT_MAX_WIDTH, PASSIVE_OPS

#: Op name prefix/name -> plan kind.
KINDS = {
    "tool.": "code",
    "check.": "code",
    "llm.": "model",
    "jit.": "jit",
    "ctl.parallel": "parallel",
    "ctl.map": "map",
    "ctl.": "control",
    "env.if": "control",
}


def kind_of(op: Op) -> str:
    """The plan kind of an op."""
    for prefix, kind in KINDS.items():
        if op.name == prefix or (prefix.endswith(".") and op.name.startswith(prefix)):
            return kind
    return "other"


def _argv_text(items) -> str:
    words = []
    for item in items:
        if isinstance(item, SymbolRef):
            words.append(f"@{item.name}")
        elif isinstance(item, ValueRef):
            words.append(f"%{item.name}")
        else:
            words.append(str(item))
    return " ".join(words)


def _short(text: str, limit: int = 70) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(op: Op) -> str:
    """A one-line description of what an op does."""
    if op.name in ("tool.exec", "check.cmd", "jit.solid"):
        return _short(_argv_text(op.attr("argv", ())))
    if op.name == "tool.script":
        return _short(f"@{op.attr('script').name} " + _argv_text(op.attr("args", ())))
    if op.name in ("tool.read", "tool.write", "check.exists"):
        path = op.attr("path") or op.attr("resource")
        shown = f"%{path.name}" if isinstance(path, ValueRef) else (
            f"@{path.name}" if isinstance(path, SymbolRef) else path
        )
        return _short(shown if shown is not None else "%" + (op.operands[0] if op.operands else "?"))
    if op.name == "tool.fetch":
        return _short(str(op.attr("url")))
    if op.name.startswith("llm."):
        text = op.attr("question") if op.name == "llm.judge" else op.attr("prompt")
        return _short(f'"{text}"')
    if op.name == "ctl.call":
        return f"@{op.attr('callee').name}"
    if op.name == "env.if":
        neg = "not " if op.has_attr("negate") else ""
        return f"{neg}{op.attr('kind').name} {op.attr('value')} (checked on the host)"
    if op.name in ("ctl.map", "ctl.parallel"):
        width = op.attr("max_width", DEFAULT_MAX_WIDTH)
        extra = ", collect errors" if op.has_attr("collect_errors") else ""
        what = f"{len(op.regions)} branches" if op.name == "ctl.parallel" else f"over %{op.operands[0]}"
        return f"{what}, width {width}{extra}"
    if op.name in ("ctl.if", "ctl.for_each"):
        return f"%{op.operands[0]}" if op.operands else ""
    return ""


def build_plan(module: Module, proc: str = "main", model: str = "") -> str:
    """The plan text of procedure ``@proc`` (and the procedures it calls)."""
    lines: list[str] = []
    counts: Counter[str] = Counter()
    expanded: set[str] = set()

    def walk_region(region: Region, depth: int) -> None:
        for op in region.ops:
            if op.name in PASSIVE_OPS or op.name in ("ctl.yield", "ctl.return"):
                continue
            walk_op(op, depth)

    def walk_op(op: Op, depth: int) -> None:
        kind = kind_of(op)
        counts[kind] += 1
        results = ", ".join("%" + r.name for r in op.results)
        lhs = f"{results} = " if results else ""
        loc = f"  [{op.location}]" if op.location else ""
        lines.append(f"{'  ' * depth}{kind:<8} {lhs}{op.name} {describe(op)}".rstrip() + loc)
        labels = {"ctl.if": ("then", "else"), "env.if": ("then", "else"), "jit.solid": ("fallback",)}
        for index, region in enumerate(op.regions):
            if op.name == "ctl.parallel":
                lines.append(f"{'  ' * (depth + 1)}branch {index}:")
                walk_region(region, depth + 2)
            elif op.name in labels and region.ops:
                lines.append(f"{'  ' * (depth + 1)}{labels[op.name][index]}:")
                walk_region(region, depth + 2)
            else:
                walk_region(region, depth + 1)
        if op.name == "ctl.call":
            callee = module.lookup(op.attr("callee").name)
            if callee is not None and callee.sym_name not in expanded:
                expanded.add(callee.sym_name)
                walk_region(callee.body, depth + 1)

    target = module.lookup(proc)
    if target is None or target.name != "skill.proc":
        return f"the skill has no procedure @{proc}\n"
    expanded.add(proc)
    params = ", ".join(f"%{p.name}: {p.type}" for p in target.params)
    header = [f"plan for @{proc}({params}) of skill @{module.sym_name}"]
    walk_region(target.body, 1)
    summary = (
        f"{counts['code']} code op(s), {counts['model']} model op(s)"
        f" ({model or 'default model'}), {counts['jit']} solidified,"
        f" {counts['parallel'] + counts['map']} parallel group(s)"
    )
    if counts["model"] == 0 and counts["jit"] == 0:
        summary += "; no model is needed"
    return "\n".join(header + lines + [summary]) + "\n"
