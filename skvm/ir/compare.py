"""Structural equivalence of modules "up to locations".

Two modules are equivalent when they are equal after every op's source
location (``loc``) and ``.skir`` parse position (``pos``) is removed:
same symbol name, same ops in the same order, same operands, results
(names and types), attributes (every key and value, exactly) and regions.
Nothing else is normalised: prompts, context text, attributes the front
end records for itself all count. Used by the ``agentskills`` round-trip
tests (import → export → import) and usable by passes' tests.
"""

from __future__ import annotations

import difflib

import attrs

from skvm.ir.operation import Module, Op, Region
from skvm.ir.printer import print_module


def strip_locations_op(op: Op) -> Op:
    """``op`` (and everything nested in it) without ``loc`` and ``pos``."""
    regions = tuple(Region(tuple(strip_locations_op(o) for o in r.ops), r.args) for r in op.regions)
    return attrs.evolve(op, loc=None, pos=None, regions=regions)


def strip_locations(module: Module) -> Module:
    """``module`` with every op's ``loc`` and ``pos`` removed."""
    return Module(module.sym_name, Region(tuple(strip_locations_op(o) for o in module.ops), module.body.args))


def equivalent(a: Module, b: Module) -> bool:
    """Whether ``a`` and ``b`` are equal up to locations."""
    return strip_locations(a) == strip_locations(b)


def difference(a: Module, b: Module, context: int = 3) -> str:
    """A unified diff of the location-free printed forms ('' when equivalent).

    When the printed forms agree but the modules do not (a difference the
    printer does not show), the first differing top-level op is named.
    """
    sa, sb = strip_locations(a), strip_locations(b)
    if sa == sb:
        return ""
    ta, tb = print_module(sa), print_module(sb)
    if ta != tb:
        lines = difflib.unified_diff(ta.splitlines(), tb.splitlines(), "a", "b", n=context, lineterm="")
        return "\n".join(lines)
    for i, (x, y) in enumerate(zip(sa.ops, sb.ops)):
        if x != y:
            return f"top-level op {i} ({x.name}) differs outside its printed form:\n{x!r}\n{y!r}"
    return f"modules differ outside their printed form ({len(sa.ops)} vs {len(sb.ops)} ops)"
