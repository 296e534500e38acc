"""The ``canonicalize`` transform: put the IR in one normal form.

Rewrites (each local, each preserving meaning):

* capability lists: one entry per primitive (the highest level), sorted;
* a ``tool.exec {shell}`` whose command line has no shell syntax becomes a
  plain argv (no shell is started for it at run time);
* control-flow ops with no results and nothing in their regions are erased;
* at module level, ``skill.meta`` comes first and ``skill.resource`` ops
  follow it, each group in its original order.
"""

from __future__ import annotations

import re
import shlex

import attrs

from skvm.ir.attributes import Cap
from skvm.ir.operation import Module, Op, replace_ops_deep
from skvm.passes.base import ModulePass, PassResult

#: Characters that make a command line need a shell.
_SHELL_SYNTAX = re.compile(r"[|&;<>()$`\\*?\[\]{}~!#=\n]|^\s*\w+=")
_ERASABLE_WHEN_EMPTY = frozenset({"ctl.if", "env.if", "ctl.for_each", "ctl.map", "ctl.parallel"})


def canonical_caps(caps: tuple) -> tuple:
    """One capability per primitive, at its highest level, sorted by primitive."""
    best: dict[str, int] = {}
    for cap in caps:
        if isinstance(cap, Cap):
            best[cap.primitive] = max(best.get(cap.primitive, 0), cap.level)
    return tuple(Cap(p, best[p]) for p in sorted(best))


def _is_canonical(caps: tuple) -> bool:
    """Whether :func:`canonical_caps` would return ``caps`` unchanged (checked without building)."""
    last = None
    for cap in caps:
        if not isinstance(cap, Cap) or cap.level < 0:
            return False
        if last is not None and cap.primitive <= last:
            return False
        last = cap.primitive
    return True


def _canonical_op(op: Op) -> Op | None:
    caps = op.attr("caps")
    if isinstance(caps, tuple) and caps and not _is_canonical(caps):
        canonical = canonical_caps(caps)
        if canonical != caps:
            op = op.with_attrs(caps=canonical)
    if op.name == "tool.exec" and op.has_attr("shell"):
        argv = op.attr("argv", ())
        if len(argv) == 1 and isinstance(argv[0], str) and not _SHELL_SYNTAX.search(argv[0]):
            try:
                words = shlex.split(argv[0])
            except ValueError:
                words = []
            if words:
                op = op.with_attrs(argv=tuple(words), shell=None)
    if (
        op.name in _ERASABLE_WHEN_EMPTY
        and not op.results
        and all(not r.ops for r in op.regions)
    ):
        return None
    return op


def canonicalize_module(module: Module) -> Module:
    """Apply every canonicalization; returns ``module`` itself when nothing changes."""
    new_ops = []
    for op in module.body.ops:
        if op.regions:
            op = op.with_regions([replace_ops_deep(r, _canonical_op) for r in op.regions])
        out = _canonical_op(op) if op.name != "skill.proc" else op
        if out is not None:
            new_ops.append(out)
    metas = [op for op in new_ops if op.name == "skill.meta"]
    resources = [op for op in new_ops if op.name == "skill.resource"]
    rest = [op for op in new_ops if op.name not in ("skill.meta", "skill.resource")]
    return module.with_ops(metas + resources + rest)


@attrs.frozen
class Canonicalize(ModulePass):
    """Normalises capability lists, shell-free commands, empty regions and op order."""

    name = "canonicalize"
    summary = "normalise caps, drop needless shells, erase empty control flow, order module ops"

    def run(self, module: Module, am, ctx) -> PassResult:
        new = canonicalize_module(module)
        if new is module or new == module:
            return self.unchanged(module)
        return self.changed(new)
