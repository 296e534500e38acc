"""The SkIR dialects. Importing this package registers every op."""

from skvm.ir.dialects import check, ctl, ctx, env, jit, llm, skill, tool  # noqa: F401

DIALECTS = ("skill", "ctx", "llm", "tool", "ctl", "env", "check", "jit")
