"""Capability requirements of a model step, from a rule table over its text.

Each :class:`CapRule` matches the step's prose or its code and says which
primitive, at which level, the step needs; the matched span is kept as
evidence. A few requirements are computed rather than matched (the number of
constraints, the number of sub-steps). The highest level per primitive wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

from skvm.ir.attributes import Cap


@attrs.frozen
class CapRule:
    """Text matching ``pattern`` implies ``primitive`` at ``level``."""

    primitive: str
    level: int
    pattern: re.Pattern
    #: "text": the step's prose; "code": code in the step; "any": both.
    where: str = "any"
    #: Lowercase literals one of which every match contains (None: no prefilter).
    needles: tuple[str, ...] | None = None
    #: For a rule without needles: lowercase literals one of which every match
    #: contains, ignoring case but for CASE_FOLD_TRAPS (None: always searched).
    gate: tuple[str, ...] | None = None


_SPECIAL = set("()[]{}?*+|.^$")


def _split_top(pattern: str) -> list[str]:
    """Split a regex at its top-level ``|``."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
        i += 1
    parts.append(pattern[start:])
    return parts


def _group_end(pattern: str, start: int) -> int:
    depth, i = 0, start
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _prefix(alternative: str, loose: bool = False) -> list[str] | None:
    """Literal prefixes one of which every match of ``alternative`` starts with.

    ``loose`` (for :func:`gate_for`) also accepts one-character prefixes and
    spells an optional character both ways (``.m?js`` gives ``.mjs`` and
    ``.js``) instead of cutting the prefix before it.
    """
    alt = alternative
    while True:
        if alt.startswith("^"):
            alt = alt[1:]
        elif alt.startswith("\\b"):
            alt = alt[2:]
        else:
            break
    if alt.startswith("(?:"):
        end = _group_end(alt, 0)
        if end < 0 or (end + 1 < len(alt) and alt[end + 1] in "?*"):
            return None
        found: list[str] = []
        for inner in _split_top(alt[3:end]):
            sub = _prefix(inner, loose)
            if sub is None:
                return None
            found.extend(sub)
        return found
    literal = []
    i = 0
    while i < len(alt):
        ch = alt[i]
        if ch == "\\" and i + 1 < len(alt) and not alt[i + 1].isalnum():
            literal.append(alt[i + 1])
            i += 2
            continue
        if ch in _SPECIAL or ch == "\\":
            if loose and ch == "?" and literal:
                # Both spellings, each followed by the prefixes of the rest
                # (or by nothing: a shorter prefix is still a prefix).
                head = "".join(literal).lower()
                rest = _prefix(alt[i + 1 :], loose) or [""]
                return [h + r for h in (head, head[:-1]) for r in rest if h + r]
            if ch in "?*{" and literal:
                literal.pop()  # the previous character is optional
            break
        literal.append(ch)
        i += 1
    text = "".join(literal).lower()
    return [text] if len(text) >= (1 if loose else 2) else None


def needles_for(pattern: str) -> tuple[str, ...] | None:
    """Lowercase literals one of which every match of ``pattern`` contains."""
    found: list[str] = []
    for alternative in _split_top(pattern):
        sub = _prefix(alternative)
        if sub is None:
            return None
        found.extend(sub)
    return tuple(sorted(set(found)))


def gate_for(pattern: str) -> tuple[str, ...] | None:
    """Like :func:`needles_for`, for the rules it finds no needles for.

    Shorter and spelled-out literals make a weaker filter, used only as a
    containment test on a text free of :data:`CASE_FOLD_TRAPS` (see
    :func:`_first_match`).
    """
    found: list[str] = []
    for alternative in _split_top(pattern):
        sub = _prefix(alternative, loose=True)
        if not sub:
            return None
        found.extend(sub)
    return tuple(sorted(set(found)))


def _r(primitive: str, level: int, pattern: str, where: str = "any") -> CapRule:
    needles = needles_for(pattern)
    gate = gate_for(pattern) if needles is None else None
    return CapRule(primitive, level, re.compile(pattern, re.IGNORECASE), where, needles, gate)


#: The rule table. Order does not matter: every rule is tried.
CAP_RULES: tuple[CapRule, ...] = (
    # Code generation, by language and by what the code uses.
    _r("gen.code.python", 1, r"\bpython\b|\.py\b|```python"),
    _r("gen.code.python", 2, r"^\s*import (?:csv|json|re|os|pathlib|subprocess|argparse)\b", "code"),
    _r("gen.code.python", 3, r"\b(?:pandas|numpy|requests|matplotlib|scipy|openpyxl|pillow|PIL|torch)\b"),
    _r("gen.code.javascript", 1, r"\b(?:javascript|node(?:\.js)?|\.m?js\b|typescript|\.tsx?\b)"),
    _r("gen.code.javascript", 2, r"\b(?:npm|package\.json|require\(|import .* from)\b"),
    _r("gen.code.javascript", 3, r"\b(?:react|vite|webpack|async\s+function|await\b|DOM)\b"),
    _r("gen.code.shell", 1, r"\b(?:bash|shell|terminal|command line)\b|```(?:bash|sh|shell|zsh|console)"),
    _r("gen.code.shell", 2, r"\|\s*\w|\s>\s*\S|\bfor \w+ in\b", "code"),
    _r("gen.code.shell", 3, r"\b(?:sed|awk|xargs)\b", "code"),
    _r("gen.code.sql", 1, r"\b(?:SQL|SELECT\s+\S|sqlite|postgres(?:ql)?|mysql)\b"),
    _r("gen.code.sql", 2, r"\b(?:JOIN|GROUP BY|subquer(?:y|ies)|window function)\b"),
    _r("gen.code.html", 1, r"\b(?:HTML|<div|<html|markup)\b"),
    _r("gen.code.html", 2, r"\b(?:SVG|<form|<table|semantic)\b"),
    _r("gen.code.html", 3, r"\b(?:responsive|accessib(?:le|ility)|a11y|canvas|WebGL|animation)\b"),
    _r("gen.regex", 1, r"\b(?:regex|regular expression|pattern match)"),
    # Structured and long output.
    _r("gen.text.structured", 1, r"\b(?:JSON|YAML|CSV|TOML)\b"),
    _r("gen.text.structured", 2, r"\bnested\b|\bschema\b"),
    _r("gen.text.long", 1, r"\b(?:write|draft|produce|generate)\b.{0,40}\b(?:report|document|guide|article|README|summary)\b"),
    _r("gen.text.long", 2, r"\b(?:comprehensive|detailed|full|complete)\s+(?:report|document|guide|plan|spec)"),
    _r("gen.text.prose", 1, r"\b(?:write|draft|compose|summari[sz]e)\b"),
    _r("gen.text.prose", 2, r"\b(?:essay|article|blog post|announcement|newsletter|memo|letter)\b"),
    # Reasoning.
    _r("reason.arithmetic", 1, r"\b(?:calculate|compute|count|sum|total|add up)\b"),
    _r("reason.arithmetic", 2, r"\b(?:average|mean|median|weighted|ratio|rate)\b"),
    _r("reason.arithmetic", 3, r"\b(?:percentage|percent|compound|interest|ROI|statistic(?:s|al))\b|%\s*of\b"),
    _r("reason.logic", 1, r"\b(?:if|unless|whether|decide)\b", "text"),
    _r("reason.logic", 2, r"\b(?:constraints?|conditions|rules? out|all of the following)\b"),
    _r("reason.logic", 3, r"\b(?:optimi[sz]e|best combination|minimi[sz]e|maximi[sz]e|trade-?offs?)\b"),
    _r("reason.spatial", 1, r"\b(?:distance|direction|coordinates?|x/y|position)\b"),
    _r("reason.spatial", 2, r"\b(?:area|rotate|rotation|transform|layout|geometry)\b"),
    _r("reason.spatial", 3, r"\b(?:3D|three-dimensional|spherical|latitude|longitude)\b"),
    _r("reason.planning", 1, r"\b(?:plan|order of|sequence|steps?)\b", "text"),
    _r("reason.planning", 2, r"\b(?:decompose|break (?:it |the \w+ )?down|in parallel|dependencies)\b"),
    _r("reason.planning", 3, r"\b(?:recover|fallback|retry|roll ?back|contingency)\b"),
    _r("reason.analysis", 1, r"\b(?:understand|inspect|explain|identify|examine)\b"),
    _r("reason.analysis", 2, r"\b(?:analy[sz]e|review|debug|diagnos\w*|bugs?|failing|errors?)\b"),
    _r("reason.analysis", 3, r"\b(?:root cause|across (?:files|modules|the codebase)|architecture)\b"),
    # Tool use.
    _r("tool.file.read", 1, r"\b(?:read|open|load|view)\b.{0,30}\b(?:file|document|\.md|\.txt|\.json|\.csv)"),
    _r("tool.file.read", 2, r"\b(?:all|each|every|several|multiple)\s+(?:the\s+)?(?:files|documents|references)\b"),
    _r("tool.file.read", 3, r"\b(?:large files?|offsets?|line ranges?|chunks?)\b"),
    _r("tool.file.write", 1, r"\b(?:write|save|create|output)\b.{0,30}\b(?:file|\.md|\.txt|\.json|\.csv|\.html|\.py)"),
    _r("tool.file.write", 2, r"\b(?:edit|modify|update|patch)\b.{0,30}\bfiles?\b"),
    _r("tool.file.write", 3, r"\b(?:several|multiple|each of the)\s+files\b"),
    _r("tool.exec", 1, r"\b(?:run|execute|invoke)\b"),
    _r("tool.exec", 2, r"\b(?:run|execute)\b.{0,40}\b(?:script|tests?|build)\b"),
    _r("tool.exec", 3, r"\b(?:pipeline|chain|then run|re-?run)\b"),
    _r("tool.call.format", 1, r"\b(?:argument|flag|option|parameter)s?\b"),
    _r("tool.call.format", 2, r"--json\b|\bJSON (?:argument|payload|body)\b"),
    _r("tool.call.batch", 1, r"\b(?:both|two) (?:files|reads|calls)\b"),
    _r("tool.call.batch", 2, r"\b(?:batch|in parallel|simultaneously|at once)\b"),
    _r("tool.web", 1, r"\bhttps?://|\b(?:fetch|download|API|endpoint|web search)\b"),
    _r("tool.web", 2, r"\b(?:query parameters?|REST|GraphQL|JSON response|status code)\b"),
    _r("tool.web", 3, r"\b(?:paginat\w+|several APIs|rate limit)\b"),
    _r("tool.browser", 1, r"\b(?:browser|navigate|web ?page|screenshot|playwright|puppeteer|selenium)\b"),
    _r("tool.browser", 2, r"\b(?:click|fill (?:in|out)|form|dynamic page|wait for)\b"),
    _r("tool.browser", 3, r"\b(?:log ?in|sign ?in|authenticate|multi-step flow)\b"),
    # Instruction following.
    _r("follow.format", 1, r"\b(?:format|markdown|table|bullet list)\b"),
    _r("follow.format", 2, r"\b(?:schema|template|exact(?:ly)? (?:format|structure))\b"),
    _r("follow.delegation", 1, r"\b(?:write a script|use a script|run the script)\b"),
    _r("follow.style", 1, r"\b(?:tone|formal|casual|concise)\b"),
    _r("follow.style", 2, r"\b(?:persona|voice|brand|style guide|register)\b"),
)

#: Each rule's capability (immutable, so every finding of the rule shares it).
_RULE_CAPS: tuple[Cap, ...] = tuple(Cap(rule.primitive, rule.level) for rule in CAP_RULES)
#: Every needle of every rule.
ALL_NEEDLES: tuple[str, ...] = tuple(
    sorted({n for rule in CAP_RULES if rule.needles for n in rule.needles})
)
#: The constraint words in lowercase: a text whose lowercase form holds none of
#: them has no constraint word (the pattern is case-sensitive ASCII), so the
#: scan of most step texts is skipped (they are among the scanned literals).
_CONSTRAINT_WORDS = ("must", "never", "always", "should", "do not", "don't", "required", "only")
#: What a text is scanned for once: every needle, every gate literal and
#: every constraint word.
_SCAN_LITERALS: tuple[str, ...] = tuple(
    sorted(
        set(ALL_NEEDLES)
        .union(*(rule.gate for rule in CAP_RULES if rule.gate))
        .union(_CONSTRAINT_WORDS)
    )
)


def _trie_pattern(words: Iterable[str]) -> str:
    """A regex matching the longest of ``words`` that starts where it is tried.

    The words are merged into a trie, so trying the regex at a position costs
    one branch per character instead of one attempt per word; at each node the
    longer continuations are tried first (greedy ``?``).
    """
    trie: dict = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}  # a word ends here

    def pattern(node: dict) -> str:
        branches = [re.escape(ch) + pattern(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return pattern(trie)


def _unanchored_literals(pattern: str) -> set[str]:
    """The needle and gate literals of ``pattern``'s top-level alternatives not starting with ``\\b``.

    A match of an alternative that starts with ``\\b`` starts at a word
    boundary, so its literals only matter where they start at one.
    """
    found: set[str] = set()
    for alternative in _split_top(pattern):
        if not alternative.lstrip("^").startswith("\\b"):
            found.update(_prefix(alternative) or ())
            found.update(_prefix(alternative, loose=True) or ())
    return found


#: The literals that may matter where no word boundary precedes them (a
#: handful: "%", ".py", "```"...); every other one (the constraint words too:
#: their pattern starts each alternative with ``\b``) only where one does.
_ANYWHERE_LITERALS: frozenset[str] = frozenset(_SCAN_LITERALS) & set().union(
    *(_unanchored_literals(rule.pattern.pattern) for rule in CAP_RULES)
)
#: Finds, at every position, the longest literal starting there (a lookahead,
#: so overlapping literals are all seen).
_NEEDLE_SCAN = re.compile("(?=(" + _trie_pattern(_SCAN_LITERALS) + "))")
#: The same, in two scans that find the same literals where they matter with
#: much less work: the trie of most literals is only tried at word
#: boundaries, the small one of the others everywhere. Only for ASCII texts,
#: whose lowercase form has the boundaries of the text (see _Text).
_WORD_START_SCAN = re.compile(
    r"\b(?=(" + _trie_pattern(sorted(set(_SCAN_LITERALS) - _ANYWHERE_LITERALS)) + "))"
)
_ANYWHERE_SCAN = re.compile("(?=(" + _trie_pattern(sorted(_ANYWHERE_LITERALS)) + "))")
#: The literals a literal starts with (itself included): where the longest
#: literal at a position starts, each of these starts too.
_NEEDLE_PREFIXES: dict[str, frozenset[str]] = {
    literal: frozenset(n for n in _SCAN_LITERALS if literal.startswith(n)) for literal in _SCAN_LITERALS
}


#: Rule indices by needle (none for a literal that is only a gate), and the
#: rules without needles (always tried).
_RULES_BY_NEEDLE: dict[str, tuple[int, ...]] = {
    literal: tuple(i for i, rule in enumerate(CAP_RULES) if rule.needles and literal in rule.needles)
    for literal in _SCAN_LITERALS
}
_UNFILTERED: tuple[int, ...] = tuple(i for i, rule in enumerate(CAP_RULES) if rule.needles is None)


#: The characters IGNORECASE matches to an ASCII letter that ``str.lower`` does
#: not turn into that one letter ("ſ" matches "s"; "İ" lowers to two characters):
#: without them, the lowercase form of every case-insensitive match of an ASCII
#: literal is in the lowercase text.
CASE_FOLD_TRAPS = "\u017f\u0131\u0130"


class _Text:
    """A text with its lowercase form and the scanned literals present in it (found once)."""

    __slots__ = ("folds", "low", "present", "text")

    def __init__(self, text: str):
        self.text = text
        self.low = low = text.lower()
        ascii_only = text.isascii()
        # Whether a gate's containment test could miss a match (see CASE_FOLD_TRAPS).
        self.folds = not ascii_only and any(c in text for c in CASE_FOLD_TRAPS)
        if not text:
            longest: set[str] = set()
        elif ascii_only:
            longest = set(_WORD_START_SCAN.findall(low))
            longest.update(_ANYWHERE_SCAN.findall(low))
        else:
            longest = set(_NEEDLE_SCAN.findall(low))
        # Every literal present where it may start a match (and maybe others).
        self.present = frozenset().union(*map(_NEEDLE_PREFIXES.__getitem__, longest))

    def positions(self, needles: tuple[str, ...]) -> list[int]:
        """Every position where one of ``needles`` starts, in order."""
        found: set[int] = set()
        for needle in needles:
            if needle not in self.present:
                continue
            at = self.low.find(needle)
            while at >= 0:
                found.add(at)
                at = self.low.find(needle, at + 1)
        return sorted(found)


def _first_match(rule: CapRule, target: _Text) -> re.Match | None:
    """The leftmost match of ``rule`` in ``target``.

    Every match starts with one of the rule's needles, so the pattern is only
    tried, anchored, where a needle starts: the same leftmost match as
    ``search`` without scanning the text once per rule.
    """
    if rule.needles is None or len(target.low) != len(target.text):
        if rule.gate is not None and not target.folds and target.present.isdisjoint(rule.gate):
            return None  # no match can start anywhere: skip the search of the whole text
        return rule.pattern.search(target.text)
    present = target.present.intersection(rule.needles)
    if not present:
        return None
    if len(present) == 1:
        # One needle (the usual case): its occurrences come in order already.
        (needle,) = present
        low, text, match = target.low, target.text, rule.pattern.match
        at = low.find(needle)
        while at >= 0:
            m = match(text, at)
            if m:
                return m
            at = low.find(needle, at + 1)
        return None
    for position in target.positions(rule.needles):
        m = rule.pattern.match(target.text, position)
        if m:
            return m
    return None


_CONSTRAINT = re.compile(r"\b(?:MUST|NEVER|ALWAYS|SHOULD|DO NOT|DON'T|REQUIRED|ONLY)\b|\b(?:must|never|always|do not|don't)\b")


@attrs.frozen
class CapFinding:
    """A capability with the evidence that triggered it."""

    cap: Cap
    evidence: str


def step_capabilities(text: str, code: Iterable[str] = (), substeps: int = 0) -> list[CapFinding]:
    """Capabilities a step with prose ``text`` and ``code`` blocks needs.

    Returns one finding per primitive (its highest level), sorted by primitive.
    """
    best: dict[str, CapFinding] = {}

    def note(cap: Cap, evidence: str) -> None:
        current = best.get(cap.primitive)
        if current is None or cap.level > current.cap.level:
            best[cap.primitive] = CapFinding(cap, evidence.strip()[:80])

    prose = _Text(text)
    joined = "\n".join(code)
    # Most steps have no code: nothing to scan, and no rule looks at it.
    code_text = _Text(joined) if joined else None
    # The texts each kind of rule looks at, in order (an empty text matches nothing).
    prose_only = (prose,) if text else ()
    code_only = (code_text,) if code_text is not None else ()
    by_where = {"text": prose_only, "code": code_only, "any": prose_only + code_only}
    # Only rules one of whose needles occurs (or that have none) can match.
    candidates = set(_UNFILTERED)
    for target in prose_only + code_only:
        candidates.update(*map(_RULES_BY_NEEDLE.__getitem__, target.present))
    for index in sorted(candidates):
        rule = CAP_RULES[index]
        for target in by_where[rule.where]:
            m = _first_match(rule, target)
            if m:
                note(_RULE_CAPS[index], m.group(0))
                break
    constraints = _CONSTRAINT.findall(text) if not prose.present.isdisjoint(_CONSTRAINT_WORDS) else ()
    if constraints:
        level = 1 if len(constraints) < 3 else 2 if len(constraints) <= 5 else 3
        note(Cap("follow.constraint", level), f"{len(constraints)} constraint word(s): {constraints[0]}")
    if substeps:
        level = 1 if substeps <= 4 else 2 if substeps <= 7 else 3
        note(Cap("follow.procedure", level), f"{substeps} sub-steps")
    return [best[p] for p in sorted(best)]
