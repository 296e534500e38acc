"""The ``tool`` dialect: deterministic work done as code.

Custom syntax::

    %out = tool.exec ["python", @extract_py, %pdf] {reads = ["in.pdf"]} : text
    %out = tool.exec ["cat a.txt | sort"] {shell} : text
    %r = tool.script @extract_py ["--pages", "all"] : text
    %t = tool.read "notes.md" : text
    %p = tool.write "tables.csv" (%tables) : path
    %page = tool.fetch "https://example.com" : text

Effect attributes (``reads``, ``writes`` lists of paths or globs, ``net``)
describe what the op touches; the ``effects`` analysis reads them. An op
without them is treated conservatively.
"""

from __future__ import annotations

from skvm.ir.dialects import _checks as C
from skvm.ir.operation import Effect, Op, register

_EFFECT_CHECKS = {
    "reads": C.strings,
    "writes": C.strings,
    "net": C.unit,
    "timeout": C.integer,
    "origin": C.string,
    "lang": C.string,
}


@register
class ExecOp(Op):
    """Run a command (argv; a shell only when ``shell`` is set: a pipeline)."""

    op_name = "tool.exec"
    summary = "run a command given as argv (shell only for pipelines)"
    effects = Effect.EXEC | Effect.READ | Effect.WRITE
    positional = ("argv",)
    required_positional = 1
    required_attrs = ("argv",)
    attr_checks = {**_EFFECT_CHECKS, "argv": C.argv, "shell": C.unit, "cwd": C.string}

    def verify_op(self, ctx) -> None:
        argv = self.attr("argv")  # a missing argv is reported as a missing attribute
        if isinstance(argv, tuple) and not argv:
            ctx.error(self, "tool.exec needs a non-empty argv")
        if self.has_attr("shell") and isinstance(argv, tuple) and len(argv) != 1:
            ctx.error(self, "a shell tool.exec takes exactly one command line")


@register
class ScriptOp(Op):
    """Run a bundled script with the interpreter its extension implies."""

    op_name = "tool.script"
    summary = "run a bundled script resource with the right interpreter"
    effects = Effect.EXEC | Effect.READ | Effect.WRITE
    positional = ("script", "args")
    required_positional = 1
    required_attrs = ("script",)
    attr_checks = {**_EFFECT_CHECKS, "script": C.symbol, "args": C.argv}

    def verify_op(self, ctx) -> None:
        ref = self.attr("script")
        target = ctx.module.lookup(ref.name) if ref is not None else None
        if target is not None and target.name == "skill.resource":
            kind = target.attr("kind")
            if kind is not None and kind.name not in ("script", "other"):
                ctx.error(self, f"tool.script runs @{ref.name}, a {kind.name}, not a script")


@register
class ReadOp(Op):
    """Read a file of the work directory (path attribute or operand)."""

    op_name = "tool.read"
    summary = "read a file (path given as attribute or operand)"
    effects = Effect.READ
    positional = ("path",)
    attr_checks = {"path": C.string_or_value, "resource": C.symbol}
    result_count = 1


@register
class WriteOp(Op):
    """Write its operand to a file of the work directory."""

    op_name = "tool.write"
    summary = "write the operand's value to a file"
    effects = Effect.WRITE
    positional = ("path",)
    required_positional = 1
    required_attrs = ("path",)
    attr_checks = {"path": C.string_or_value, "append": C.unit}
    operand_count = 1


@register
class FetchOp(Op):
    """Fetch a URL over HTTP."""

    op_name = "tool.fetch"
    summary = "fetch a URL over HTTP"
    effects = Effect.NET
    positional = ("url",)
    required_positional = 1
    required_attrs = ("url",)
    attr_checks = {"url": C.string_or_value, "method": C.string, "headers": C.dictionary}
    result_count = (0, 1)
