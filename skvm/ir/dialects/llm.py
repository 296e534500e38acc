"""The ``llm`` dialect: work only a model can do.

Custom syntax::

    %t = llm.step "Find every table" (%pages) {caps = [reason.analysis:L1]} : json
    %s = llm.gen "Summarize" (%t) : text
    %ok = llm.judge "Is the file a scanned PDF?" (%pdf) : bool
"""

from __future__ import annotations

from skvm.ir import types as T
from skvm.ir.dialects import _checks as C
from skvm.ir.operation import Effect, Op, register

_COMMON_CHECKS = {
    "prompt": C.string,
    "caps": C.caps,
    "evidence": C.dictionary,
    "tools": C.strings,
    "max_turns": C.integer,
    "max_tokens": C.integer,
    "template": C.string,
    "origin": C.string,
    "legalized": C.strings,
    # Commands the step's text shows (candidates for legalize's elimination).
    "commands": C.strings,
    # A bundled script the step's text names.
    "script": C.symbol,
}


class _ModelOp(Op):
    effects = Effect.MODEL | Effect.UNKNOWN
    positional = ("prompt",)
    required_positional = 1
    required_attrs = ("prompt",)
    attr_checks = _COMMON_CHECKS
    result_count = (0, 1)

    @property
    def caps(self):
        """The capability requirements (a tuple of Cap)."""
        return tuple(self.attr("caps", ()))


@register
class StepOp(_ModelOp):
    """An agentic model step: may use tools; yields a typed result."""

    op_name = "llm.step"
    summary = "an agentic model step (tools allowed) with a typed result"


@register
class GenOp(_ModelOp):
    """One model call producing text or JSON; no tools."""

    op_name = "llm.gen"
    summary = "a single model call producing text or JSON (no tools)"
    effects = Effect.MODEL


@register
class JudgeOp(_ModelOp):
    """A boolean decision made by the model."""

    op_name = "llm.judge"
    summary = "a boolean decision made by the model"
    effects = Effect.MODEL
    positional = ("question",)
    required_attrs = ("question",)
    attr_checks = {**_COMMON_CHECKS, "question": C.string}
    result_count = 1

    def verify_op(self, ctx) -> None:
        if self.results and self.results[0].type != T.BOOL:
            ctx.error(self, "llm.judge must produce a bool")
