"""The ``hermes`` target: a skill for Nous Research's Hermes Agent.

Installs to ``~/.hermes/skills/<name>/`` (user scope only); agentskills
frontmatter plus Hermes' ``tags`` and ``related_skills`` when the source had
them; tools are ``terminal``, ``read_file``, ``write_file``; parallel regions
are independent parts (skills-format.md §2, §3.1, docs mirror).
"""

from __future__ import annotations

from skvm.backends.base import Backend


class HermesBackend(Backend):
    """A skill folder for Hermes Agent."""

    name = "hermes"
    summary = "Hermes Agent skill (~/.hermes/skills), tags and related_skills kept"
