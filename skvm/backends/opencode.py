"""The ``opencode`` target: a skill for OpenCode.

Installs to ``~/.config/opencode/skills/<name>/`` or
``.opencode/skills/<name>/``; OpenCode recognises only ``name``,
``description``, ``license``, ``compatibility`` and ``metadata`` and checks the
name against ``^[a-z0-9]+(-[a-z0-9]+)*$`` and the folder; tools are ``bash``,
``read``, ``write``, ``webfetch``; parallel regions are several tool calls in
one turn (skills-format.md §3.1).
"""

from __future__ import annotations

from skvm.backends.base import Backend


class OpenCodeBackend(Backend):
    """A skill folder for OpenCode."""

    name = "opencode"
    summary = "OpenCode skill (.opencode/skills), batched tool calls"
