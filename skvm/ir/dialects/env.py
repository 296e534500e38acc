"""The ``env`` dialect: what the skill needs from its environment.

Custom syntax::

    env.require pip "pypdf" {version = ">=4"}
    env.require bin "pdftotext" {apt = "poppler-utils"}
    env.bind pip "pypdf" {status = present, version = "4.2.0"}
    env.bind bin "ffmpeg" {install = ["apt-get install -y ffmpeg"], status = missing}
    env.if os "macos" { … } else { … }
"""

from __future__ import annotations

from skvm.ir.dialects import _checks as C
from skvm.ir.operation import Effect, Op, Trait, register

#: Package managers and requirement kinds ``env.require`` understands.
MANAGERS = (
    "pip", "npm", "apt", "brew", "cargo", "go", "gem", "bin", "service", "env", "python", "node", "os",
)
#: What ``env.if`` can test.
CONDITION_KINDS = ("os", "bin", "env", "arch", "python")

_REQ_CHECKS = {
    "manager": C.keyword(*MANAGERS),
    "package": C.string,
    "version": C.string,
    "import_name": C.string,
    "apt": C.string,
    "brew": C.string,
    "evidence": C.string,
    "optional": C.unit,
    "origin": C.string,
}


@register
class RequireOp(Op):
    """A requirement on the environment: a package, binary, service or variable."""

    op_name = "env.require"
    summary = "a requirement: package (pip, npm, apt, …), binary, service or env var"
    traits = Trait.PURE
    effects = Effect.ENV
    positional = ("manager", "package")
    required_positional = 2
    required_attrs = ("manager", "package")
    attr_checks = _REQ_CHECKS
    operand_count = 0
    result_count = 0


@register
class BindOp(Op):
    """A resolved requirement: present (version, path) or missing with an install plan."""

    op_name = "env.bind"
    summary = "a resolved requirement: present with version/path, or missing with a plan"
    traits = Trait.PURE
    effects = Effect.ENV
    positional = ("manager", "package")
    required_positional = 2
    required_attrs = ("manager", "package", "status")
    attr_checks = {
        **_REQ_CHECKS,
        "status": C.keyword("present", "missing", "unknown"),
        "path": C.string,
        "install": C.strings,
        "found_version": C.string,
    }
    operand_count = 0
    result_count = 0


@register
class EnvIfOp(Op):
    """Branch on the platform or on a tool's presence; folded by ``resolve-env``."""

    op_name = "env.if"
    summary = "branch on OS, architecture, a binary's or env var's presence"
    traits = Trait.HAS_REGIONS
    effects = Effect.ENV
    positional = ("kind", "value")
    required_positional = 2
    required_attrs = ("kind", "value")
    attr_checks = {"kind": C.keyword(*CONDITION_KINDS), "value": C.string, "negate": C.unit}
    operand_count = 0
    result_count = (0, None)
    region_count = 2
    region_keywords = ("", "else")
