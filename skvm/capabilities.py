"""The catalog of capability primitives that skills require and targets provide.

A skill's requirements and a target's abilities are expressed over the same 26
primitives (9 generation, 5 reasoning, 7 tool-use, 5 instruction-following),
each at a level ``L0`` (absent) < ``L1`` < ``L2`` < ``L3``. The catalog is data:
passes and target profiles look primitives up here, and diagnostics use
:func:`suggest` to propose the id a user probably meant.
"""

from __future__ import annotations

import difflib

import attrs

LEVELS: tuple[str, ...] = ("L0", "L1", "L2", "L3")
"""Level names in increasing order; the index of a name is its value."""

GROUPS: tuple[str, ...] = ("gen", "reason", "tool", "follow")
"""Primitive groups, in catalog order."""


@attrs.frozen
class Primitive:
    """One capability primitive and what each level of it is tested on."""

    id: str
    group: str
    l1: str
    l2: str
    l3: str

    def criterion(self, level: int) -> str:
        """The criterion of ``level`` (1..3); L0 means the ability is absent."""
        return ("absent", self.l1, self.l2, self.l3)[level]


# (id, L1, L2, L3): a paraphrase of the level criteria of the SkVM catalog.
_CATALOG: tuple[tuple[str, str, str, str], ...] = (
    (
        "gen.code.python",
        "a single-file script with plain file input and output",
        "uses the standard library (csv, json, re, os)",
        "uses third-party packages such as pandas, requests or numpy",
    ),
    (
        "gen.code.javascript",
        "a single-file script using fs",
        "Node built-in modules and npm packages",
        "asynchronous code and complex APIs (DOM, build tooling)",
    ),
    (
        "gen.code.shell",
        "one basic command at a time",
        "pipes, redirections and loops",
        "pipelines built from sed, awk and xargs",
    ),
    (
        "gen.code.sql",
        "SELECT with WHERE and simple aggregates",
        "joins, GROUP BY, subqueries and window functions",
        "common table expressions over many tables, query tuning",
    ),
    (
        "gen.code.html",
        "headings, lists and links",
        "forms, tables, semantic markup and simple SVG",
        "complex SVG, responsive layout and accessibility",
    ),
    (
        "gen.text.structured",
        "valid flat JSON or YAML below 500 bytes",
        "nested documents below 5 KB",
        "deeply nested documents above 5 KB",
    ),
    (
        "gen.text.long",
        "a complete output below 1 KB",
        "1 to 5 KB while keeping its structure",
        "above 5 KB with every delimiter intact",
    ),
    (
        "gen.text.prose",
        "one coherent paragraph",
        "several paragraphs in a steady tone",
        "long-form text with sections and transitions",
    ),
    (
        "gen.regex",
        "literals, character classes and quantifiers",
        "groups, alternation and anchors",
        "lookaround and named groups",
    ),
    (
        "reason.arithmetic",
        "a single operation",
        "a few chained steps such as averages or weighted sums",
        "compound calculations such as percentage chains or finance",
    ),
    (
        "reason.logic",
        "a single if-then rule",
        "several constraints considered together",
        "optimization under constraints",
    ),
    (
        "reason.spatial",
        "distance and direction in two dimensions",
        "areas and geometric transforms",
        "spherical or three-dimensional geometry",
    ),
    (
        "reason.planning",
        "ordering three to five dependent steps",
        "decomposing a goal and spotting work that can run in parallel",
        "plans with branches and recovery from errors",
    ),
    (
        "reason.analysis",
        "the purpose of a short snippet",
        "bugs in code of moderate size",
        "root causes that span several files",
    ),
    (
        "tool.file.read",
        "one file read by path",
        "several files, coping with missing ones",
        "large files read with offsets",
    ),
    (
        "tool.file.write",
        "a short file below 1 KB",
        "a larger file of 1 to 10 KB",
        "several files written in sequence",
    ),
    (
        "tool.exec",
        "one command",
        "write a script, run it and keep its output",
        "chained runs of several steps",
    ),
    (
        "tool.call.format",
        "plain string arguments",
        "structured arguments (JSON objects, arrays)",
        "nested arguments containing special characters",
    ),
    (
        "tool.call.batch",
        "two reads issued in one turn",
        "five reads issued together and aggregated",
        "batched calls with reasoning across their results",
    ),
    (
        "tool.web",
        "one GET request, reading one field",
        "query parameters and a parsed response",
        "several APIs with pagination",
    ),
    (
        "tool.browser",
        "navigate, wait and read text",
        "forms, clicks and dynamic pages",
        "multi-step flows that include logging in",
    ),
    (
        "follow.format",
        "a named format such as JSON",
        "a given schema",
        "several format constraints at once",
    ),
    (
        "follow.constraint",
        "one MUST",
        "three to five constraints together",
        "constraints that run against the model's habits",
    ),
    (
        "follow.procedure",
        "three steps in order",
        "five to seven steps with branches",
        "loops and verification steps",
    ),
    (
        "follow.delegation",
        "writes and runs a script when told to",
        "prefers code to mental arithmetic",
        "delegates to code unprompted when that is the obvious move",
    ),
    (
        "follow.style",
        "formal versus casual register",
        "a persona or a register held throughout",
        "one style kept over a long output",
    ),
)

PRIMITIVES: dict[str, Primitive] = {
    pid: Primitive(pid, pid.split(".", 1)[0], l1, l2, l3) for pid, l1, l2, l3 in _CATALOG
}
"""Every primitive by id, in catalog order."""


def is_primitive(pid: str) -> bool:
    """Whether ``pid`` names a primitive of the catalog."""
    return pid in PRIMITIVES


def is_level(name: str) -> bool:
    """Whether ``name`` is a level name ``L0``..``L3``."""
    return name in LEVELS


def level_value(name: str) -> int:
    """The integer value of a level name: ``level_value("L2") == 2``.

    Raises:
        ValueError: ``name`` is not one of :data:`LEVELS`.
    """
    try:
        return LEVELS.index(name)
    except ValueError:
        raise ValueError(f"unknown level '{name}' (expected one of {', '.join(LEVELS)})") from None


def level_name(value: int) -> str:
    """The name of a level value: ``level_name(2) == "L2"``."""
    if not 0 <= value < len(LEVELS):
        raise ValueError(f"level {value} out of range 0..{len(LEVELS) - 1}")
    return LEVELS[value]


def suggest(pid: str, n: int = 3) -> list[str]:
    """The primitive ids closest to ``pid``, best first, for "did you mean" notes."""
    return difflib.get_close_matches(pid, list(PRIMITIVES), n=n, cutoff=0.6)
