"""The ``ctl`` dialect: control flow and concurrency.

Custom syntax::

    %r = ctl.if (%ok) { … ctl.yield (%a) } else { … ctl.yield (%b) } : text
    ctl.for_each (%files) as (%f: path) { … }
    %outs = ctl.map (%files) {max_width = 4} as (%f: path) { … ctl.yield (%o) } : list<text>
    %a, %b = ctl.parallel {kind = tlp} { … ctl.yield (%x) } { … ctl.yield (%y) } : text, text
    ctl.yield (%v)
    ctl.return (%out)
    %r = ctl.call @helper (%x) : text

Region results are produced by ``ctl.yield``; a procedure's by ``ctl.return``.
"""

from __future__ import annotations

from skvm.ir import types as T
from skvm.ir.dialects import _checks as C
from skvm.ir.operation import Effect, Op, Trait, register


def _yielded(region):
    if region.ops and region.ops[-1].name == "ctl.yield":
        return region.ops[-1]
    return None


def _check_region_yields(op: Op, ctx, region_indexes) -> None:
    """Every region listed must end in a ctl.yield matching the op's result count."""
    expected = len(op.results)
    for i in region_indexes:
        region = op.regions[i]
        y = _yielded(region)
        if expected and y is None:
            ctx.error(op, f"region #{i} of {op.name} must end with ctl.yield of {expected} value(s)")
        elif y is not None and len(y.operands) != expected:
            ctx.error(
                y,
                f"ctl.yield yields {len(y.operands)} value(s) but {op.name} has {expected} result(s)",
            )


@register
class IfOp(Op):
    """Two-way branch on a bool; each branch may yield the op's results."""

    op_name = "ctl.if"
    summary = "branch on a bool: then region, else region"
    traits = Trait.HAS_REGIONS
    effects = Effect.NONE
    operand_count = 1
    result_count = (0, None)
    region_count = 2
    region_keywords = ("", "else")
    attr_checks = {"condition": C.string}

    def verify_op(self, ctx) -> None:
        t = ctx.type_of(self.operands[0]) if self.operands else None
        if t is not None and t not in (T.BOOL, T.ANY):
            ctx.error(self, f"ctl.if condition must be bool, got {t}")
        _check_region_yields(self, ctx, range(len(self.regions)))


class _LoopOp(Op):
    traits = Trait.HAS_REGIONS
    effects = Effect.NONE
    operand_count = 1
    result_count = (0, 1)
    region_count = 1

    def verify_op(self, ctx) -> None:
        if not self.regions:
            return
        body = self.regions[0]
        if len(body.args) != 1:
            ctx.error(self, f"{self.name} body takes exactly one argument (the element)")
        collection = ctx.type_of(self.operands[0]) if self.operands else None
        if collection is not None and collection.name not in ("list", "any", "json", "text"):
            ctx.error(self, f"{self.name} iterates over a list, got {collection}")
        if collection is not None and collection.name == "list" and len(body.args) == 1:
            if not T.is_assignable(T.element_type(collection), body.args[0].type):
                ctx.error(
                    self,
                    f"{self.name} element type {body.args[0].type} does not match {collection}",
                )
        if self.results:
            if self.results[0].type.name not in ("list", "any"):
                ctx.error(self, f"{self.name} result must be a list, got {self.results[0].type}")
            y = _yielded(body)
            if y is None or len(y.operands) != 1:
                ctx.error(self, f"{self.name} with a result needs its body to ctl.yield one value")


@register
class ForEachOp(_LoopOp):
    """Sequential loop over a collection."""

    op_name = "ctl.for_each"
    summary = "sequential loop over a collection"
    attr_checks = {"over": C.string}


@register
class MapOp(_LoopOp):
    """Data-parallel loop: iterations are independent and may run concurrently."""

    op_name = "ctl.map"
    summary = "data-parallel loop (independent iterations run concurrently)"
    attr_checks = {"max_width": C.integer, "collect_errors": C.unit, "over": C.string}


@register
class ParallelOp(Op):
    """Independent branches run concurrently; results join in declaration order."""

    op_name = "ctl.parallel"
    summary = "independent branches run concurrently, joined in order"
    traits = Trait.HAS_REGIONS
    effects = Effect.NONE
    operand_count = 0
    result_count = (0, None)
    region_count = (2, None)
    attr_checks = {
        "kind": C.keyword("ilp", "tlp"),
        "max_width": C.integer,
        "collect_errors": C.unit,
    }

    def verify_op(self, ctx) -> None:
        yielded = 0
        for i, region in enumerate(self.regions):
            if region.args:
                ctx.error(self, f"ctl.parallel branch #{i} takes no arguments")
            y = _yielded(region)
            yielded += len(y.operands) if y else 0
        if yielded != len(self.results):
            ctx.error(
                self,
                f"ctl.parallel branches yield {yielded} value(s) "
                f"but the op has {len(self.results)} result(s)",
            )


@register
class YieldOp(Op):
    """Ends a region of ctl.if / ctl.for_each / ctl.map / ctl.parallel, yielding values."""

    op_name = "ctl.yield"
    summary = "terminate a control-flow region, yielding values"
    traits = Trait.TERMINATOR
    effects = Effect.CONTROL
    result_count = 0


@register
class ReturnOp(Op):
    """Returns from the procedure with its results."""

    op_name = "ctl.return"
    summary = "return from the procedure"
    traits = Trait.TERMINATOR
    effects = Effect.CONTROL
    result_count = 0


@register
class CallOp(Op):
    """Calls another procedure of the skill."""

    op_name = "ctl.call"
    summary = "call a procedure of the skill"
    effects = Effect.UNKNOWN
    positional = ("callee",)
    required_positional = 1
    required_attrs = ("callee",)
    attr_checks = {"callee": C.symbol}
    result_count = (0, None)

    def verify_op(self, ctx) -> None:
        callee = self.attr("callee")
        target = ctx.module.lookup(callee.name) if callee is not None else None
        if target is None or target.name != "skill.proc":
            return  # dangling symbols are reported by the verifier itself
        params = target.regions[0].args if target.regions else ()
        if len(params) != len(self.operands):
            ctx.error(
                self,
                f"ctl.call @{callee.name} passes {len(self.operands)} argument(s), "
                f"the procedure takes {len(params)}",
            )
        result_types = tuple(t.type for t in target.attr("result_types", ()))
        if len(result_types) != len(self.results):
            ctx.error(
                self,
                f"ctl.call @{callee.name} expects {len(self.results)} result(s), "
                f"the procedure returns {len(result_types)}",
            )
