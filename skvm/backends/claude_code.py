"""The ``claude-code`` target: a skill for Claude Code.

Installs to ``~/.claude/skills/<name>/`` or ``.claude/skills/<name>/``; keeps
the Claude Code frontmatter extensions it reads at top level
(``argument-hint``, ``disable-model-invocation``, ``user-invocable``,
``model``, ``context``, ``agent``) next to the spec keys; names its tools
(Bash, Read, Write, WebFetch) in the prose and runs parallel regions as
sub-agents dispatched with the Task tool (skills-format.md §2, §3.1).
"""

from __future__ import annotations

from skvm.backends.base import Backend


class ClaudeCodeBackend(Backend):
    """A skill folder for Claude Code."""

    name = "claude-code"
    summary = "Claude Code skill (.claude/skills), sub-agents for parallel work"
