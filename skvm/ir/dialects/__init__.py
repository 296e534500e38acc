"""The SkIR dialects. Importing this package registers every op."""

from skvm.ir.dialects import _checks, check, ctl, ctx, env, jit, llm, skill, tool  # noqa: F401

DIALECTS = ("skill", "ctx", "llm", "tool", "ctl", "env", "check", "jit")

#: Provenance attributes any op may carry (set by the front end, read by
#: back ends to regenerate the source; passes keep them).
COMMON_ATTR_CHECKS = {
    # The op was built by the importer, not read from the text.
    "synthetic": _checks.unit,
    # The exact list marker (or heading hashes) of the step the op came from.
    "marker": _checks.string,
    # The step's source text, on the first op lowered from it.
    "origin": _checks.string,
    # The op repeats something the surrounding text already says.
    "inline": _checks.unit,
}
