"""The ``codex`` target: a skill for the Codex CLI.

Installs to ``~/.agents/skills/<name>/`` or ``.agents/skills/<name>/``; the
frontmatter keeps ``name``, ``description`` and ``metadata`` with
``metadata.short-description``; an ``agents/openai.yaml`` sidecar carries the
UI metadata (display name, short description, default prompt). Parallel
regions are phrased as several tool calls in one turn; descriptions are kept
inside a share of Codex's catalog budget (skills-format.md §2, §3.1).
"""

from __future__ import annotations

import re

from skvm.backends.base import Backend, trim, yaml_scalar

SHORT_DESCRIPTION_MAX = 100


class CodexBackend(Backend):
    """A skill folder for Codex, with its ``agents/openai.yaml`` sidecar."""

    name = "codex"
    summary = "Codex skill (.agents/skills) with agents/openai.yaml, batched tool calls"

    def derived_short_description(self) -> str:
        """The description's first sentence, trimmed to a short UI line."""
        first = re.split(r"(?<=[.!?])\s", self.description, maxsplit=1)[0].rstrip(".")
        return trim(first, SHORT_DESCRIPTION_MAX)

    def frontmatter_fields(self):
        """Spec keys Codex reads, with ``metadata.short-description`` set."""
        fields = super().frontmatter_fields()
        metadata = dict(fields.get("metadata", {}))
        if not metadata.get("short-description"):
            metadata["short-description"] = self.derived_short_description()
        self.short = metadata["short-description"]
        fields["metadata"] = dict(sorted(metadata.items()))
        return fields

    def extra_files(self) -> dict[str, str]:
        """``agents/openai.yaml``: the interface block Codex shows for the skill."""
        display = " ".join(w.capitalize() for w in self.skill_name.split("-"))
        lines = [
            "interface:",
            f"  display_name: {yaml_scalar(display)}",
            f"  short_description: {yaml_scalar(self.short)}",
            f"  default_prompt: {yaml_scalar('Use $' + self.skill_name + '.')}",
        ]
        return {"agents/openai.yaml": "\n".join(lines) + "\n"}
