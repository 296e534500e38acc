"""The ``agentskills`` target: a folder valid under the Agent Skills specification.

Exactly the six spec frontmatter keys; other keys (``skill.meta``
``extensions``) move under ``metadata`` as strings; the name is normalised
to the spec and names the folder; the description is trimmed to 1,024
characters and rid of ``<``/``>`` (rejected by Anthropic's validator). The
body follows the conventions of :mod:`skvm.backends.render` so the front end
reads it back to the same module (skills-format.md §1.2, §1.4, §5).
"""

from __future__ import annotations

from skvm.backends.base import Backend

#: Replacements that keep a description free of angle brackets.
ANGLE_BRACKETS = str.maketrans({"<": "‹", ">": "›"})


class AgentSkillsBackend(Backend):
    """A spec-valid Agent Skills folder (the front end's inverse)."""

    name = "agentskills"
    summary = "spec-valid Agent Skills folder (agentskills.io), round-trips through the front end"

    def make_description(self) -> str:
        """The spec description: ≤ 1024 characters, no angle brackets."""
        desc = super().make_description()
        if "<" in desc or ">" in desc:
            self.warn("angle brackets in the description replaced by ‹ ›")
            desc = desc.translate(ANGLE_BRACKETS)
        return desc
