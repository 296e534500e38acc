"""The ``check`` dialect: post-conditions enforced at run time.

Custom syntax::

    check.exists (%out)
    check.exists "report.md"
    check.schema (%tables) {schema = "{\"type\": \"array\"}"}
    check.cmd ["python", "-m", "json.tool", "out.json"]
"""

from __future__ import annotations

import json

from skvm.ir.dialects import _checks as C
from skvm.ir.operation import Effect, Op, register


@register
class ExistsOp(Op):
    """The path (operand or attribute) must exist after the preceding steps."""

    op_name = "check.exists"
    summary = "a path must exist"
    effects = Effect.READ
    positional = ("path",)
    attr_checks = {"path": C.string}
    operand_count = (0, 1)
    result_count = 0

    def verify_op(self, ctx) -> None:
        if not self.operands and not self.has_attr("path"):
            ctx.error(self, "check.exists needs a path operand or a path attribute")


@register
class SchemaOp(Op):
    """The operand must validate against a JSON Schema."""

    op_name = "check.schema"
    summary = "a value must validate against a JSON Schema"
    effects = Effect.NONE
    required_attrs = ("schema",)
    attr_checks = {"schema": C.string}
    operand_count = 1
    result_count = 0

    def verify_op(self, ctx) -> None:
        schema = self.attr("schema")
        if isinstance(schema, str):
            try:
                json.loads(schema)
            except ValueError as exc:
                ctx.error(self, f"check.schema schema is not valid JSON: {exc}")


@register
class CmdOp(Op):
    """A command that must exit 0."""

    op_name = "check.cmd"
    summary = "a command that must exit with status 0"
    effects = Effect.EXEC | Effect.READ
    positional = ("argv",)
    required_positional = 1
    required_attrs = ("argv",)
    attr_checks = {"argv": C.argv, "shell": C.unit}
    result_count = 0
