"""The ``skill`` dialect: frontmatter, bundled files and procedures.

Custom syntax::

    meta {description = "…", name = "pdf"}
    resource @extract_py = "scripts/extract.py" {kind = script, sha256 = "…"}
    proc @main(%task: text) -> path { … }
"""

from __future__ import annotations

from skvm.ir.dialects import _checks as C
from skvm.ir.operation import Effect, Op, Trait, register

RESOURCE_KINDS = ("script", "reference", "asset", "other")


@register
class MetaOp(Op):
    """The skill's frontmatter: name, description, license, allowed tools, extras."""

    op_name = "skill.meta"
    summary = "frontmatter of the skill (name, description, license, allowed tools, …)"
    traits = Trait.PURE | Trait.MODULE_LEVEL | Trait.CONTEXT
    effects = Effect.NONE
    operand_count = 0
    result_count = 0
    attr_checks = {
        "name": C.string,
        "description": C.string,
        "license": C.string,
        "compatibility": C.string,
        "allowed_tools": C.strings,
        "metadata": C.dictionary,
        "extensions": C.dictionary,
    }


@register
class ResourceOp(Op):
    """A file bundled with the skill: script, reference or asset, with its hash."""

    op_name = "skill.resource"
    summary = "a bundled file (script, reference, asset) with its content hash"
    traits = Trait.PURE | Trait.SYMBOL | Trait.MODULE_LEVEL
    effects = Effect.NONE
    operand_count = 0
    result_count = 0
    required_attrs = ("sym_name", "path", "kind")
    attr_checks = {
        "sym_name": C.string,
        "path": C.string,
        "kind": C.keyword(*RESOURCE_KINDS),
        "sha256": C.string,
        "size": C.integer,
        "lazy": C.unit,
        "missing": C.unit,
    }

    def verify_op(self, ctx) -> None:
        path = self.attr("path")
        if isinstance(path, str) and (path.startswith("/") or ".." in path.split("/")):
            ctx.error(self, f"resource path '{path}' must be relative to the skill root")


@register
class ProcOp(Op):
    """A procedure: typed parameters (region arguments), result types and a body."""

    op_name = "skill.proc"
    summary = "a procedure with typed parameters, result types and a body region"
    traits = Trait.SYMBOL | Trait.HAS_REGIONS | Trait.ISOLATED | Trait.MODULE_LEVEL
    effects = Effect.NONE
    operand_count = 0
    result_count = 0
    region_count = 1
    required_attrs = ("sym_name",)
    attr_checks = {"sym_name": C.string, "result_types": C.types, "section": C.string}

    @property
    def result_types(self):
        """The declared result types."""
        return tuple(t.type for t in self.attr("result_types", ()))

    @property
    def params(self):
        """The parameters (arguments of the body region)."""
        return self.regions[0].args if self.regions else ()

    @property
    def body(self):
        """The body region."""
        return self.regions[0]
