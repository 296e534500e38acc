"""The ``ctx`` dialect: what the model must know.

Custom syntax::

    ctx.text "Overview" "This skill …"
    ctx.rule must "Never overwrite the input PDF." {scope = "global"}
    ctx.example "pdftotext in.pdf out.txt" {lang = "bash"}
    ctx.ref @forms {when = "when the form has fields"}
    ctx.ref @workflow          // a procedure anchored here in the context stream
"""

from __future__ import annotations

from skvm.ir.dialects import _checks as C
from skvm.ir.operation import Effect, Op, Trait, register

RULE_SEVERITIES = ("must", "should", "never", "may")


class _ContextOp(Op):
    traits = Trait.PURE | Trait.CONTEXT
    effects = Effect.NONE
    operand_count = 0
    result_count = 0


@register
class TextOp(_ContextOp):
    """A section of prose shown to the model."""

    op_name = "ctx.text"
    summary = "a section of prose for the model (title, text)"
    positional = ("title", "text")
    required_positional = 2
    required_attrs = ("title", "text")
    attr_checks = {
        "title": C.string,
        "text": C.string,
        "level": C.integer,
        "html_comment": C.unit,
    }


@register
class RuleOp(_ContextOp):
    """A rule the model must follow, with a severity."""

    op_name = "ctx.rule"
    summary = "a rule for the model: must / should / never / may"
    positional = ("severity", "text")
    required_positional = 2
    required_attrs = ("severity", "text")
    attr_checks = {
        "severity": C.keyword(*RULE_SEVERITIES),
        "text": C.string,
        "scope": C.string,
        # The rule is also stated in the surrounding ctx.text (back ends do not repeat it).
        "inline": C.unit,
    }


@register
class ExampleOp(_ContextOp):
    """Code shown to the model as an example, not run."""

    op_name = "ctx.example"
    summary = "example code shown to the model, not run"
    positional = ("code",)
    required_positional = 1
    required_attrs = ("code",)
    attr_checks = {"code": C.string, "lang": C.string, "title": C.string, "indented": C.unit}


@register
class RefOp(_ContextOp):
    """A bundled resource the model may load on demand, or a procedure's place.

    Referencing a ``skill.proc`` anchors the procedure in the context stream:
    back ends render its steps at this point of the text.
    """

    op_name = "ctx.ref"
    summary = "a lazily loaded bundled resource (@resource), or a procedure's anchor (@proc)"
    positional = ("resource",)
    required_positional = 1
    required_attrs = ("resource",)
    attr_checks = {"resource": C.symbol, "when": C.string, "text": C.string}
