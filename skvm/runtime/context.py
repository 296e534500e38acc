"""Context selection: what a model step is told about the skill.

A model step never sees the whole skill. Its context is built from the IR:

1. the skill's name and description (``skill.meta``);
2. every ``ctx.rule`` of the module (rules are short and global: a rule the
   step does not see is a rule it cannot follow);
3. the *section* of the step's procedure: the ``ctx.text`` whose title is the
   procedure's ``section`` attribute and the ``ctx.text`` / ``ctx.example`` /
   ``ctx.ref`` ops after it up to the next heading of the same or a higher
   level. A procedure without a section (the catch-all ``@main`` of a
   guidance-only skill) gets every ``ctx.text`` and ``ctx.example``;
4. the bundled files the selected ``ctx.ref`` ops name, and the script the
   step's ``script`` attribute names, listed as readable paths (never
   inlined: the model reads them when it needs them);
5. the step's own instruction and its operand values.

Prose is cut to a character budget (smaller for the embedded model, whose
window is 8k tokens) so a long skill cannot crowd out the task.
"""

from __future__ import annotations

import attrs

from skvm.ir.attributes import SymbolRef
from skvm.ir.operation import Module, Op

#: Characters of selected prose given to hosted models and to the embedded one.
PROSE_BUDGET = 12000
SMALL_PROSE_BUDGET = 2500

_SECTION_OPS = ("ctx.text", "ctx.example", "ctx.ref")


@attrs.frozen
class StepContext:
    """The selected context of one model step."""

    skill: str
    description: str
    rules: tuple[tuple[str, str], ...]
    prose: str
    resources: tuple[tuple[str, str], ...]  # (path, when)

    def render(self) -> str:
        """The context as the system-prompt text shown to the model."""
        parts = [f"You are carrying out one step of the skill '{self.skill}'."]
        if self.description:
            parts.append(f"Skill description: {self.description}")
        if self.rules:
            parts.append(
                "Rules:\n" + "\n".join(f"- [{sev}] {text}" for sev, text in self.rules)
            )
        if self.prose:
            parts.append("Guidance:\n" + self.prose)
        if self.resources:
            parts.append(
                "Files you may read with read_file:\n"
                + "\n".join(f"- {p}" + (f" ({w})" if w else "") for p, w in self.resources)
            )
        return "\n\n".join(parts)


def _section_ops(module: Module, section: str | None) -> list[Op]:
    """The module-level context ops of ``section`` (all prose when None)."""
    ops = [op for op in module.ops if op.name in _SECTION_OPS]
    if section is None:
        return [op for op in ops if op.name != "ctx.ref"]
    selected: list[Op] = []
    level = None
    for op in ops:
        title = op.attr("title", "") if op.name == "ctx.text" else ""
        op_level = op.attr("level", 99)
        if level is None:
            if op.name == "ctx.text" and title == section:
                level = op_level
                selected.append(op)
            continue
        if title and op_level <= level:
            break
        selected.append(op)
    return selected


def _prose(ops: list[Op], budget: int) -> str:
    chunks = []
    for op in ops:
        if op.name == "ctx.text":
            if op.has_attr("html_comment"):
                continue  # maintainer notes are not guidance
            title, text = op.attr("title", ""), op.attr("text", "")
            chunk = (f"## {title}\n" if title else "") + text
        elif op.name == "ctx.example":
            chunk = f"```{op.attr('lang', '')}\n{op.attr('code', '')}\n```"
        else:
            continue
        if chunk.strip():
            chunks.append(chunk.strip())
    text = "\n\n".join(chunks)
    return text if len(text) <= budget else text[: budget - 15] + "\n[... cut ...]"


def select_context(
    module: Module,
    proc: Op | None,
    op: Op,
    resource_path,
    *,
    small: bool = False,
) -> StepContext:
    """Select the context of model op ``op`` in procedure ``proc``.

    ``resource_path(name)`` maps a resource symbol to the path the model can
    read it at (the staged copy in the work directory).
    """
    meta = module.meta
    name = meta.attr("name", module.sym_name) if meta is not None else module.sym_name
    description = meta.attr("description", "") if meta is not None else ""
    rules = tuple(
        (r.attr("severity").name, r.attr("text"))
        for r in module.walk()
        if r.name == "ctx.rule"
    )
    section = proc.attr("section") if proc is not None else None
    ops = _section_ops(module, section)
    prose = _prose(ops, SMALL_PROSE_BUDGET if small else PROSE_BUDGET)
    refs: dict[str, str] = {}
    for ref in ops:
        target = ref.attr("resource") if ref.name == "ctx.ref" else None
        if isinstance(target, SymbolRef):
            defining = module.lookup(target.name)
            if defining is not None and defining.name == "skill.resource":
                refs.setdefault(target.name, ref.attr("when", ""))
    script = op.attr("script")
    if isinstance(script, SymbolRef):
        refs.setdefault(script.name, "the script this step names")
    resources = tuple(
        (p, when) for sym, when in sorted(refs.items()) if (p := resource_path(sym)) is not None
    )
    return StepContext(name, description, rules, prose, resources)
