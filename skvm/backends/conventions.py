"""Harness conventions as data: where skills live, what is read, how work is phrased.

One :class:`Harness` row per target. The back ends read these tables instead
of branching on the target name; ``docs/targets.md`` explains each row and
cites its source (``../shared/skills-format.md`` sections and the harnesses'
own docs).
"""

from __future__ import annotations

import attrs

from skvm.frontend.frontmatter import SPEC_KEYS

#: How a harness runs independent work (``ctl.map`` / ``ctl.parallel``).
PARALLEL_STYLES = ("subagents", "batched", "sections")


@attrs.frozen
class ToolNames:
    """What the prose calls the harness's tools (empty: generic wording)."""

    shell: str = ""
    read: str = ""
    write: str = ""
    fetch: str = ""
    subagent: str = ""


@attrs.frozen
class Harness:
    """The conventions of one target harness.

    Attributes:
        name: target name (``--to=``).
        title: human name.
        user_dir: user-scope skills folder (``~`` = home), "" when none.
        project_dir: project-scope skills folder, relative to the project root.
        frontmatter_keys: top-level keys emitted (and read by the harness).
        tools: tool names used in the prose.
        parallel: one of :data:`PARALLEL_STYLES`.
        description_budget: listing budget for ``description`` in characters.
        single_line_frontmatter: every frontmatter value on one line (OpenClaw).
        scripts_for_commands: lower model-free command runs to ``scripts/run-<n>.sh``.
        setup_hint: when every requirement is stated in the skill's text (``inline``),
            still add a ``## Setup`` section pointing at ``scripts/setup-env.sh``.
        sources: where the conventions come from (for docs/targets.md).
    """

    name: str
    title: str
    user_dir: str
    project_dir: str
    frontmatter_keys: tuple[str, ...]
    tools: ToolNames
    parallel: str
    description_budget: int
    single_line_frontmatter: bool = False
    scripts_for_commands: bool = True
    setup_hint: bool = True
    sources: tuple[str, ...] = ()


#: The Agent Skills spec limit on ``description`` (skills-format.md §1.2).
SPEC_DESCRIPTION_MAX = 1024

HARNESSES: dict[str, Harness] = {
    h.name: h
    for h in (
        Harness(
            name="agentskills",
            title="Agent Skills (specification)",
            user_dir="~/.agents/skills",
            project_dir=".agents/skills",
            frontmatter_keys=SPEC_KEYS,
            tools=ToolNames(),
            parallel="sections",
            description_budget=SPEC_DESCRIPTION_MAX,
            # The agentskills output is the front end's inverse: commands stay
            # in the body as fenced blocks so they import back as tool.exec.
            scripts_for_commands=False,
            # ... and no Setup section is added (it would import back as prose);
            # the manifest lists the generated setup script.
            setup_hint=False,
            sources=("skills-format.md §1.2, §1.4, §1.5", "agentskills.io/specification"),
        ),
        Harness(
            name="claude-code",
            title="Claude Code",
            user_dir="~/.claude/skills",
            project_dir=".claude/skills",
            frontmatter_keys=(
                "name", "description", "license", "compatibility", "metadata", "allowed-tools",
                "argument-hint", "disable-model-invocation", "user-invocable", "model",
                "context", "agent",
            ),
            tools=ToolNames(shell="Bash", read="Read", write="Write", fetch="WebFetch", subagent="Task"),
            parallel="subagents",
            description_budget=SPEC_DESCRIPTION_MAX,
            sources=("skills-format.md §2 (Claude Code extensions), §3.1", "code.claude.com docs: Skills, Sub-agents"),
        ),
        Harness(
            name="codex",
            title="Codex CLI",
            user_dir="~/.agents/skills",
            project_dir=".agents/skills",
            frontmatter_keys=("name", "description", "metadata"),
            tools=ToolNames(shell="shell"),
            parallel="batched",
            # The catalog of *all* skills is capped near 8,000 chars and
            # descriptions are shortened first: keep each one well inside.
            description_budget=500,
            sources=("skills-format.md §2 (Codex), §3.1", "developers.openai.com/codex/skills", "openai/skills agents/openai.yaml"),
        ),
        Harness(
            name="gemini-cli",
            title="Gemini CLI",
            user_dir="~/.gemini/skills",
            project_dir=".gemini/skills",
            frontmatter_keys=("name", "description"),
            tools=ToolNames(shell="run_shell_command", read="read_file", write="write_file", fetch="web_fetch"),
            parallel="sections",
            description_budget=SPEC_DESCRIPTION_MAX,
            sources=("skills-format.md §3.1 (Gemini CLI)", "geminicli.com docs: Agent Skills"),
        ),
        Harness(
            name="opencode",
            title="OpenCode",
            user_dir="~/.config/opencode/skills",
            project_dir=".opencode/skills",
            frontmatter_keys=("name", "description", "license", "compatibility", "metadata"),
            tools=ToolNames(shell="bash", read="read", write="write", fetch="webfetch"),
            parallel="batched",
            description_budget=SPEC_DESCRIPTION_MAX,
            sources=("skills-format.md §3.1 (OpenCode)", "opencode.ai/docs/skills"),
        ),
        Harness(
            name="openclaw",
            title="OpenClaw",
            user_dir="~/.openclaw/skills",
            project_dir="skills",
            frontmatter_keys=("name", "description", "homepage", "metadata"),
            tools=ToolNames(shell="exec", read="read", write="write", fetch="web_fetch"),
            parallel="sections",
            description_budget=SPEC_DESCRIPTION_MAX,
            single_line_frontmatter=True,
            sources=("skills-format.md §2 (OpenClaw / ClawHub), §3.1", "docs.openclaw.ai: Skills"),
        ),
        Harness(
            name="hermes",
            title="Hermes Agent",
            user_dir="~/.hermes/skills",
            project_dir="",
            frontmatter_keys=("name", "description", "license", "compatibility", "metadata", "tags", "related_skills"),
            tools=ToolNames(shell="terminal", read="read_file", write="write_file", fetch="web_extract"),
            parallel="sections",
            description_budget=SPEC_DESCRIPTION_MAX,
            sources=("skills-format.md §2 (Hermes), §3.1 (docs mirror)",),
        ),
        Harness(
            name="vm",
            title="skvm bundled VM",
            user_dir="",
            project_dir="",
            frontmatter_keys=("name", "description"),
            tools=ToolNames(shell="run_command", read="read_file", write="write_file", fetch="fetch"),
            parallel="sections",
            description_budget=SPEC_DESCRIPTION_MAX,
            sources=("ARCHITECTURE.md §6, §7",),
        ),
    )
}


def harness(name: str) -> Harness:
    """The conventions row of target ``name`` (KeyError when unknown)."""
    return HARNESSES[name]
