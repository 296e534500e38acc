"""The ``openclaw`` target: a skill for OpenClaw (and ClawHub).

Installs to ``~/.openclaw/skills/<name>/`` or ``<workspace>/skills/<name>/``.
OpenClaw's frontmatter parser reads single-line keys only, so ``metadata`` is
one line of JSON; its ``openclaw.requires.bins`` / ``.env`` gate the skill on
the binaries and environment variables of ``env.require`` / ``env.bind``
(a skill whose requirements are missing is not loaded). Bundled paths in the
body use the ``{baseDir}`` placeholder (skills-format.md §2, §3.1).
"""

from __future__ import annotations

from skvm.backends import lowering
from skvm.backends.base import Backend, trim

#: Which requirement managers gate on what: manager -> openclaw.requires key.
GATES = {"bin": "bins", "env": "env"}


class OpenClawBackend(Backend):
    """A skill folder for OpenClaw with requirement gating metadata."""

    name = "openclaw"
    summary = "OpenClaw skill (skills/), single-line frontmatter, requires.{bins,env} gating"

    def resource_prefix(self) -> str:
        """OpenClaw substitutes ``{baseDir}`` with the skill folder."""
        return "{baseDir}/"

    def requires(self) -> dict[str, list[str]]:
        """``openclaw.requires`` from the module's required binaries and variables."""
        found: dict[str, list[str]] = {}
        for op in lowering.env_ops(self.module):
            key = GATES.get(op.attr("manager").name)
            if key is None or op.has_attr("optional"):
                continue
            values = found.setdefault(key, [])
            if op.attr("package") not in values:
                values.append(op.attr("package"))
        return {k: sorted(v) for k, v in sorted(found.items())}

    def frontmatter_fields(self):
        """Single-line fields; ``metadata`` is a JSON object with ``openclaw``."""
        fields = super().frontmatter_fields()
        metadata: dict = dict(fields.pop("metadata", {}))
        requires = self.requires()
        if requires:
            metadata["openclaw"] = {"requires": requires}
        # Descriptions must stay on one line (they already are: whitespace is collapsed).
        fields["description"] = trim(fields["description"], self.harness.description_budget)
        if metadata:
            fields["metadata"] = dict(sorted(metadata.items()))
        return fields
