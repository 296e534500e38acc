"""The ``effects`` analysis: what each op reads, writes, runs and calls.

Each op gets an :class:`OpEffects`: its effect kinds, the paths (or globs) it
reads and writes, and whether its effects are *unknown* (an agentic model
step with tools, a command that does not declare what it touches, a call, an
unregistered op). Ops with regions summarise their bodies. Passes that move
ops (``parallelize``) treat unknown effects as barriers.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

import attrs

from skvm.ir.attributes import ValueRef
from skvm.ir.operation import Effect, Module, Op, Trait
from skvm.passes.base import Analysis
from skvm.passes.irutil import has_trait, walk_paths

#: A path we cannot know statically (it comes from a value).
ANY_PATH = "*"


@attrs.frozen
class OpEffects:
    """The effect summary of one op (including its regions)."""

    kinds: Effect = Effect.NONE
    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()
    unknown: bool = False

    @property
    def is_pure(self) -> bool:
        """No effect at all."""
        return not self.unknown and self.kinds in (Effect.NONE,) and not self.reads and not self.writes

    def union(self, other: OpEffects) -> OpEffects:
        """The effects of doing both."""
        if other is _NONE or other == self:
            return self
        if self is _NONE:
            return other
        return OpEffects(
            self.kinds | other.kinds,
            self.reads | other.reads,
            self.writes | other.writes,
            self.unknown or other.unknown,
        )

    def describe(self) -> str:
        """A short stable text form for printing."""
        kinds = [k.name.lower() for k in Effect if k and k in self.kinds and k.name]
        parts = [",".join(kinds) or "none"]
        if self.reads:
            parts.append("reads=[" + ", ".join(sorted(self.reads)) + "]")
        if self.writes:
            parts.append("writes=[" + ", ".join(sorted(self.writes)) + "]")
        if self.unknown:
            parts.append("unknown")
        return " ".join(parts)


def _paths(value) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, ValueRef):
        return frozenset({ANY_PATH})
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, tuple):
        out: set[str] = set()
        for item in value:
            out |= _paths(item)
        return frozenset(out)
    return frozenset({ANY_PATH})


def _declared(op: Op) -> tuple[frozenset[str], frozenset[str], bool]:
    """Reads/writes declared on a command op; undeclared means unknown."""
    declared = op.has_attr("reads") or op.has_attr("writes")
    return _paths(op.attr("reads")), _paths(op.attr("writes")), not declared


def local_effects(op: Op) -> OpEffects:
    """The effects of ``op`` itself, not counting its regions."""
    name = op.name
    fixed = _FIXED.get(name)
    if fixed is not None:
        return fixed
    if has_trait(op, Trait.CONTEXT) or name in ("skill.resource", "skill.proc"):
        return _NONE
    if name in ("env.require", "env.bind", "env.if"):
        return OpEffects(Effect.ENV)
    if name == "tool.read":
        path = op.attr("path")
        if path is None and op.operands:
            path = ValueRef(op.operands[0])
        if path is None and op.has_attr("resource"):
            return OpEffects(Effect.READ)
        return OpEffects(Effect.READ, reads=_paths(path))
    if name == "tool.write":
        return OpEffects(Effect.WRITE, writes=_paths(op.attr("path")))
    if name == "check.exists":
        path = op.attr("path")
        if path is None and op.operands:
            path = ValueRef(op.operands[0])
        return OpEffects(Effect.READ, reads=_paths(path))
    if name in ("tool.exec", "tool.script", "check.cmd", "jit.solid"):
        reads, writes, unknown = _declared(op)
        kinds = Effect.EXEC
        if reads:
            kinds |= Effect.READ
        if writes:
            kinds |= Effect.WRITE
        if op.has_attr("net"):
            kinds |= Effect.NET
        return OpEffects(kinds, reads, writes, unknown)
    if name == "tool.fetch":
        return OpEffects(Effect.NET)
    if name in ("llm.gen", "llm.judge"):
        return OpEffects(Effect.MODEL)
    if name == "llm.step":
        tools = op.attr("tools")
        if tools == ():
            return OpEffects(Effect.MODEL)
        return OpEffects(Effect.MODEL | Effect.UNKNOWN, unknown=True)
    if name in ("ctl.if", "ctl.for_each", "ctl.map", "ctl.parallel", "ctl.yield", "check.schema"):
        return OpEffects(Effect.CONTROL if name == "ctl.yield" else Effect.NONE)
    if name == "ctl.return":
        return OpEffects(Effect.CONTROL)
    return OpEffects(Effect.UNKNOWN, unknown=True)


_NONE = OpEffects()
#: Ops whose effects do not depend on their attributes (shared, immutable results).
_FIXED: dict[str, OpEffects] = {
    **{name: OpEffects(Effect.ENV) for name in ("env.require", "env.bind", "env.if")},
    "tool.fetch": OpEffects(Effect.NET),
    "llm.gen": OpEffects(Effect.MODEL),
    "llm.judge": OpEffects(Effect.MODEL),
    **{name: _NONE for name in ("ctl.if", "ctl.for_each", "ctl.map", "ctl.parallel", "check.schema")},
    "ctl.yield": OpEffects(Effect.CONTROL),
    "ctl.return": OpEffects(Effect.CONTROL),
}


def paths_overlap(a: frozenset[str], b: frozenset[str]) -> bool:
    """Whether some path of ``a`` may name the same file as some path of ``b``."""
    if not a or not b:
        return False
    if ANY_PATH in a or ANY_PATH in b:
        return True
    for x in a:
        for y in b:
            if x == y or fnmatchcase(x, y) or fnmatchcase(y, x):
                return True
    return False


def conflicts(a: OpEffects, b: OpEffects) -> bool:
    """Whether ``a`` and ``b`` must keep their order (they may interfere)."""
    if a.is_pure or b.is_pure:
        return False
    if Effect.CONTROL in a.kinds or Effect.CONTROL in b.kinds:
        return True
    if a.unknown or b.unknown:
        # An unknown op conflicts with anything that touches the world.
        other = b if a.unknown else a
        return other.unknown or bool(
            other.kinds & (Effect.READ | Effect.WRITE | Effect.EXEC | Effect.NET | Effect.ENV)
        ) or bool(other.reads or other.writes)
    return (
        paths_overlap(a.writes, b.writes)
        or paths_overlap(a.writes, b.reads)
        or paths_overlap(a.reads, b.writes)
    )


@attrs.frozen
class EffectsResult:
    """Effects of every op, keyed by ``id(op)`` of the analysed module's ops."""

    by_op: dict[int, OpEffects]

    def of(self, op: Op) -> OpEffects:
        """The effects of ``op`` (which must belong to the analysed module)."""
        found = self.by_op.get(id(op))
        return found if found is not None else summarize(op, {})


def summarize(op: Op, table: dict[int, OpEffects]) -> OpEffects:
    """Effects of ``op`` including its regions; fills ``table`` for nested ops.

    Nested ops already in ``table`` are not summarized again.
    """
    total = local_effects(op)
    for region in op.regions:
        for inner in region.ops:
            inner_effects = table.get(id(inner))
            if inner_effects is None:
                inner_effects = summarize(inner, table)
            if inner.name == "ctl.yield":
                continue
            total = total.union(inner_effects)
    table[id(op)] = total
    return total


class EffectsAnalysis(Analysis):
    """Computes :class:`OpEffects` for every op."""

    name = "effects"
    summary = "reads, writes, commands, network and model calls of every op"

    def run(self, module: Module, am) -> EffectsResult:
        table: dict[int, OpEffects] = {}
        for op in module.body.ops:
            if not op.regions and (op.name == "skill.resource" or has_trait(op, Trait.CONTEXT)):
                # No effect (most of a skill's module level is context): not
                # tabled, :meth:`EffectsResult.of` answers for them on demand.
                continue
            summarize(op, table)
        return EffectsResult(table)

    def print(self, result: EffectsResult, module: Module) -> str:
        lines = []
        for path, op in walk_paths(module, module_ops="flat"):
            if op.traits & Trait.CONTEXT or op.name == "skill.resource":
                continue
            lines.append(f"{path} {op.name}: {result.of(op).describe()}")
        return "\n".join(lines) + "\n"
