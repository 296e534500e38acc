"""The ``caps`` analysis: which capabilities each op and the whole skill need.

Model ops (``llm.step``, ``llm.gen``, ``llm.judge``) carry the requirements the
front end found, ``caps = [primitive:Ln, …]``, with the text that implied each
one in ``evidence = {"primitive:Ln" = "span"}``. A model op without ``caps``
gets a conservative default from :data:`DEFAULT_CAPS` (every model step needs
at least the L1 ability its kind implies), marked *defaulted*. Deterministic
ops (``tool.*``, ``check.*``, ``ctl.*``, context) need no model capability and
derive nothing; any other op that does carry ``caps`` keeps them.

The skill's requirement is the highest level per primitive over all ops, with
the op that set it and its evidence. ``print<caps>`` prints one line per op
that needs something, then the skill summary, in catalog order.
"""

from __future__ import annotations

import attrs

from skvm.capabilities import PRIMITIVES
from skvm.diagnostics import Location
from skvm.ir.attributes import Cap, DictAttr
from skvm.ir.operation import Module, Op
from skvm.passes.base import Analysis
from skvm.passes.irutil import walk_paths

#: Ops a model executes: they always need some capability.
MODEL_OPS = frozenset({"llm.step", "llm.gen", "llm.judge"})

#: Conservative requirements of a model op that carries no ``caps``.
DEFAULT_CAPS: dict[str, tuple[Cap, ...]] = {
    # An agentic step follows the instructions in order and calls tools.
    "llm.step": (Cap("follow.procedure", 1), Cap("tool.call.format", 1)),
    # A single call writes an answer.
    "llm.gen": (Cap("gen.text.prose", 1),),
    # A yes/no decision applies one rule.
    "llm.judge": (Cap("reason.logic", 1),),
}
#: Extra default requirement by the op's result type (a JSON result must be valid JSON).
DEFAULT_CAPS_BY_RESULT: dict[str, tuple[Cap, ...]] = {
    "json": (Cap("gen.text.structured", 1), Cap("follow.format", 1)),
}
#: A step that may use no tools (``tools = []``) does not call any.
_NO_TOOL_CAPS = frozenset({"tool.call.format"})

_ORDER = {p: i for i, p in enumerate(PRIMITIVES)}


def catalog_key(primitive: str) -> tuple[int, str]:
    """Sort key putting primitives in catalog order (unknown ids last)."""
    return (_ORDER.get(primitive, len(_ORDER)), primitive)


def max_caps(caps) -> tuple[Cap, ...]:
    """One cap per primitive at its highest level, in catalog order; L0 entries dropped."""
    caps = tuple(caps)
    if _is_canonical(caps):
        return caps  # the common case: the front end and legalize write canonical lists
    best: dict[str, Cap] = {}
    for cap in caps:
        if isinstance(cap, Cap) and cap.level > 0:
            current = best.get(cap.primitive)
            if current is None or cap.level > current.level:
                best[cap.primitive] = cap
    try:
        # Catalog ranks are unique, so for known primitives they alone give
        # catalog_key's order (and a dict lookup is a much cheaper sort key).
        order = sorted(best, key=_ORDER.__getitem__)
    except KeyError:  # a primitive outside the catalog
        order = sorted(best, key=catalog_key)
    return tuple(best[p] for p in order)


def _is_canonical(caps: tuple) -> bool:
    last = -1
    for cap in caps:
        if not isinstance(cap, Cap) or cap.level <= 0:
            return False
        rank = _ORDER.get(cap.primitive)
        if rank is None or rank <= last:
            return False
        last = rank
    return True


def default_caps(op: Op) -> tuple[Cap, ...]:
    """The conservative requirements of a model op without ``caps``."""
    caps = list(DEFAULT_CAPS.get(op.name, ()))
    if op.results:
        caps.extend(DEFAULT_CAPS_BY_RESULT.get(op.results[0].type.name, ()))
    if op.attr("tools") == ():
        caps = [c for c in caps if c.primitive not in _NO_TOOL_CAPS]
    return max_caps(caps)


@attrs.frozen
class OpCaps:
    """What one op needs: its caps, the evidence per cap, whether they are defaults."""

    caps: tuple[Cap, ...]
    evidence: tuple[tuple[str, str], ...] = ()
    defaulted: bool = False

    def level(self, primitive: str) -> int:
        """The level needed for ``primitive`` (0 when not needed)."""
        for cap in self.caps:
            if cap.primitive == primitive:
                return cap.level
        return 0

    def evidence_for(self, cap: Cap) -> str | None:
        """The text that implied ``cap`` (an exact key, else any level of its primitive)."""
        found = dict(self.evidence)
        if str(cap) in found:
            return found[str(cap)]
        for key, text in self.evidence:
            if key.partition(":")[0] == cap.primitive:
                return text
        return None


def op_caps(op: Op) -> OpCaps | None:
    """The requirements of ``op`` alone (None when it needs no model capability)."""
    raw = op.attr("caps")
    # An explicit list, even empty (every need lowered to L0), replaces the default.
    if isinstance(raw, tuple):
        evidence = op.attr("evidence")
        pairs: tuple[tuple[str, str], ...] = ()
        if isinstance(evidence, DictAttr):
            pairs = tuple((k, v) for k, v in evidence.items if isinstance(v, str))
        return OpCaps(max_caps(raw), pairs)
    if op.name in MODEL_OPS:
        return OpCaps(default_caps(op), (), True)
    return None


@attrs.frozen
class SkillCap:
    """The skill's requirement for one primitive and the op that sets it."""

    cap: Cap
    op_path: str
    loc: Location | None
    evidence: str | None


@attrs.frozen
class CapsResult:
    """Requirements per op (keyed by ``id(op)``) and for the whole skill."""

    by_op: dict[int, OpCaps]
    paths: tuple[tuple[str, Op], ...]
    skill: tuple[SkillCap, ...]

    def of(self, op: Op) -> OpCaps | None:
        """The requirements of ``op`` (computed on the fly if not from this module)."""
        found = self.by_op.get(id(op))
        return found if found is not None else op_caps(op)

    def skill_level(self, primitive: str) -> int:
        """The highest level of ``primitive`` the skill needs (0 when none)."""
        for entry in self.skill:
            if entry.cap.primitive == primitive:
                return entry.cap.level
        return 0


def op_label(op: Op) -> str:
    """How diagnostics name an op: ``'%result' (llm.step)`` or just the op name."""
    if op.results:
        return f"'%{op.results[0].name}' ({op.name})"
    return f"'{op.name}'"


def compute_caps(module: Module) -> CapsResult:
    """Compute :class:`CapsResult` for ``module``."""
    by_op: dict[int, OpCaps] = {}
    paths: list[tuple[str, Op]] = []
    best: dict[str, SkillCap] = {}
    for path, op in walk_paths(module, module_ops="none"):
        needs = op_caps(op)
        if needs is None:
            continue
        by_op[id(op)] = needs
        paths.append((path, op))
        for cap in needs.caps:
            current = best.get(cap.primitive)
            if current is None or cap.level > current.cap.level:
                best[cap.primitive] = SkillCap(cap, path, op.location, needs.evidence_for(cap))
    skill = tuple(best[p] for p in sorted(best, key=catalog_key))
    return CapsResult(by_op, tuple(paths), skill)


def _quote(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


class CapsAnalysis(Analysis):
    """Capability requirements of every op and of the whole skill, with evidence."""

    name = "caps"
    summary = "capability requirements of each op and of the whole skill, with evidence"

    def run(self, module: Module, am) -> CapsResult:
        return compute_caps(module)

    def print(self, result: CapsResult, module: Module) -> str:
        lines: list[str] = []
        for path, op in result.paths:
            needs = result.by_op[id(op)]
            caps = ", ".join(str(c) for c in needs.caps) or "none"
            suffix = " (default)" if needs.defaulted else ""
            lines.append(f"{path} {op.name}: {caps}{suffix}")
            for cap in needs.caps:
                text = needs.evidence_for(cap)
                if text is not None:
                    lines.append(f"  {cap} <- {_quote(text)}")
        lines.append(f"skill @{module.sym_name}: {len(result.skill)} primitive(s)")
        for entry in result.skill:
            line = f"  {entry.cap} from {entry.op_path}"
            if entry.evidence is not None:
                line += f" <- {_quote(entry.evidence)}"
            lines.append(line)
        return "\n".join(lines) + "\n"
