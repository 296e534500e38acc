"""The ``jit`` dialect: solidified code standing in for a model step.

Custom syntax::

    %r = jit.solid ["python", @extract_py, %pdf] (%pdf) {guard = "…", hits = 5} {
      %r0 = llm.step "…" (%pdf) : text
      ctl.yield (%r0)
    } : text

The argv template runs in place of the model; the region is the original
step, kept as the fallback when the guard fails or the command fails.
"""

from __future__ import annotations

from skvm.ir.dialects import _checks as C
from skvm.ir.operation import Effect, Op, Trait, register


@register
class SolidOp(Op):
    """Solidified code for an llm.step with its original step as fallback region."""

    op_name = "jit.solid"
    summary = "solidified code for a model step, with the step kept as fallback"
    traits = Trait.HAS_REGIONS
    effects = Effect.EXEC | Effect.READ | Effect.WRITE
    positional = ("argv",)
    required_positional = 1
    required_attrs = ("argv",)
    attr_checks = {
        "argv": C.argv,
        "shell": C.unit,
        "guard": C.string,
        "hits": C.integer,
        "model": C.string,
        "harness": C.string,
        "key": C.string,
    }
    region_count = 1
    result_count = (0, 1)
