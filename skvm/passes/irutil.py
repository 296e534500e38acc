"""Fast IR queries shared by the passes and analyses.

:meth:`Op.uses`, :meth:`Op.symbol_uses` and :meth:`Op.walk` are generic
(generators over every nested attribute, recursive ``yield from``); passes
call them for every op of the module, several times per run, and they were
the largest single cost of the pipeline. These functions give the same
answers (same values, same order) without generators: scalar attribute
values are skipped by type, walks use an explicit stack, and trait tests are
cached per op class (``enum.Flag`` arithmetic is slow in Python).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from skvm.ir.attributes import DictAttr, SymbolRef, ValueRef
from skvm.ir.operation import (
    Module,
    Op,
    has_trait,  # noqa: F401  (re-exported)
)

#: Attribute value types that cannot hold a ``%x`` or ``@x`` (nor nested values).
_LEAF_TYPES = frozenset({str, int, float, bool})


def _collect(value, kind: type, out: list[str]) -> None:
    """Append the names of every ``kind`` reference inside ``value`` (pre-order)."""
    t = type(value)
    if t is kind:
        out.append(value.name)
    elif t is tuple:
        for item in value:
            if type(item) not in _LEAF_TYPES:
                _collect(item, kind, out)
    elif t is DictAttr:
        for _, item in value.items:
            if type(item) not in _LEAF_TYPES:
                _collect(item, kind, out)


def value_uses(op: Op) -> list[str]:
    """Same as :meth:`Op.uses` (operands, then ``%x`` in attributes), as a list."""
    refs = list(op.operands)
    for _, value in op.attributes.items:
        if type(value) not in _LEAF_TYPES:
            _collect(value, ValueRef, refs)
    return refs


def symbol_uses(op: Op) -> list[str]:
    """Same as :meth:`Op.symbol_uses` (``@x`` in attributes other than ``sym_name``)."""
    refs: list[str] = []
    for key, value in op.attributes.items:
        if type(value) not in _LEAF_TYPES and key != "sym_name":
            _collect(value, SymbolRef, refs)
    return refs


def _strings(value, out: list[str]) -> None:
    t = type(value)
    if t is str:
        out.append(value)
    elif t is tuple:
        for item in value:
            _strings(item, out)
    elif t is DictAttr:
        for _, item in value.items:
            _strings(item, out)


def attr_strings(op: Op) -> list[str]:
    """Every string inside ``op``'s attributes, in attribute order (as ``walk_attr`` finds them)."""
    out: list[str] = []
    for _, value in op.attributes.items:
        _strings(value, out)
    return out


def walk(ops: Iterable[Op]) -> Iterator[Op]:
    """Every op of ``ops`` and nested in them, pre-order (as :meth:`Op.walk` on each)."""
    stack = list(ops)
    stack.reverse()
    while stack:
        op = stack.pop()
        yield op
        regions = op.regions
        if regions:
            for region in reversed(regions):
                inner = region.ops
                if inner:
                    stack.extend(reversed(inner))


def deep_uses(op: Op) -> list[str]:
    """Every value ``op`` and the ops nested in it use (with repeats)."""
    if not op.regions:
        return value_uses(op)
    out: list[str] = []
    for inner in walk((op,)):
        out.extend(value_uses(inner))
    return out


def count_ops(op: Op) -> int:
    """The number of ops in ``op`` including itself."""
    if not op.regions:
        return 1
    return sum(1 for _ in walk((op,)))


def _walk_region_paths(prefix: str, ops: Iterable[Op]) -> Iterator[tuple[str, Op]]:
    for i, op in enumerate(ops):
        path = f"{prefix}#{i}"
        yield path, op
        for r, region in enumerate(op.regions):
            yield from _walk_region_paths(f"{path}.{r}", region.ops)


#: What :func:`walk_paths` yields of the ops outside procedures, by ``module_ops``.
_MODULE_OPS = {"nested": (True, True), "flat": (True, False), "none": (False, False)}


def walk_paths(module: Module, module_ops: str = "nested") -> Iterator[tuple[str, Op]]:
    """Yield ``(path, op)`` for every op in procedures and, per ``module_ops``, outside them.

    Paths: ``@proc#i`` inside a procedure, ``#i`` at module level and
    ``<parent>.r#j`` inside region ``r`` of a parent op. ``module_ops`` is
    ``"nested"`` (module-level ops and the ops nested in them), ``"flat"``
    (module-level ops only) or ``"none"`` (procedures only).
    """
    top, nested = _MODULE_OPS[module_ops]
    for i, op in enumerate(module.body.ops):
        if op.name == "skill.proc":
            if op.regions:
                yield from _walk_region_paths(f"@{op.sym_name}", op.regions[0].ops)
            continue
        if top:
            yield f"#{i}", op
        if nested:
            for r, region in enumerate(op.regions):
                yield from _walk_region_paths(f"#{i}.{r}", region.ops)
