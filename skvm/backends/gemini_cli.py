"""The ``gemini-cli`` target: a skill for Gemini CLI.

Installs to ``~/.gemini/skills/<name>/`` or ``.gemini/skills/<name>/``; Gemini
reads ``name`` and ``description`` (the rest is dropped and listed in the
manifest); tools are ``run_shell_command``, ``read_file``, ``write_file``,
``web_fetch``; there are no sub-agents, so parallel regions are written as
independent parts (skills-format.md §3.1).
"""

from __future__ import annotations

from skvm.backends.base import Backend


class GeminiCliBackend(Backend):
    """A skill folder for Gemini CLI."""

    name = "gemini-cli"
    summary = "Gemini CLI skill (.gemini/skills), activate_skill; parallel work as independent parts"
