"""SKILL.md frontmatter: split, tolerant YAML load, spec-conformance warnings.

The split follows ``skills-ref``: the file starts with a ``---`` line and the
frontmatter ends at the next ``---`` line; any later ``---`` is a Markdown
horizontal rule in the body. The body is kept byte for byte (not stripped) and
``body_start_line`` says where it starts in SKILL.md.

YAML is read with PyYAML's safe loader (the C one when available), which
accepts what real skills contain: flow lists, extra keys, Title-Case names.
Every departure from the Agent Skills specification is a located warning
(messages in :data:`MESSAGES`, stable for tests and tools); warnings never stop
the import. A YAML syntax error is located inside SKILL.md. Before giving up,
the client-implementation guide's recovery is tried: values containing
``": "`` that are not quoted are quoted; if the file then parses, the error is
reported as a warning and the import goes on; otherwise it is a
:class:`SkvmError`.

Token estimate for the body budget: ``len(body) / 4`` characters per token,
the usual rule of thumb for English prose; the check is offline and only has
to flag bodies clearly over ~5,000 tokens.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import unicodedata

import attrs
import yaml

from skvm.diagnostics import Diagnostic, DiagnosticEngine, Location, Severity, SkvmError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SPEC_KEYS = ("name", "description", "license", "compatibility", "metadata", "allowed-tools")
NAME_MAX = 64
DESCRIPTION_MAX = 1024
COMPATIBILITY_MAX = 500
BODY_MAX_LINES = 500
BODY_MAX_TOKENS = 5000
CHARS_PER_TOKEN = 4
# Guard against alias bombs and deep nesting when converting YAML values.
_JSON_MAX_NODES = 10_000
_JSON_MAX_DEPTH = 64

# Top-level keys outside the spec that a known harness reads: key -> who.
HARNESS_KEYS: dict[str, str] = {
    "argument-hint": "Claude Code",
    "arguments": "Claude Code",
    "disable-model-invocation": "Claude Code",
    "user-invocable": "Claude Code",
    "model": "Claude Code",
    "context": "Claude Code",
    "agent": "Claude Code",
    "hooks": "Claude Code",
    "when_to_use": "Claude Code",
    "version": "ClawHub (author metadata)",
    "author": "ClawHub (author metadata)",
    "homepage": "ClawHub (author metadata)",
    "source": "ClawHub (author metadata)",
    "effort": "Trail of Bits skills",
    "type": "Trail of Bits skills",
    "tags": "Hermes",
    "related_skills": "Hermes",
}

# Every warning this module emits, by id; ``{}`` fields are filled in.
MESSAGES: dict[str, str] = {
    "no-frontmatter": "missing YAML frontmatter (SKILL.md should start with '---')",
    "not-line-1": "frontmatter does not start on line 1",
    "unclosed": "frontmatter is not closed by a '---' line; reading the whole file as body",
    "not-mapping": "frontmatter is not a YAML mapping; ignoring it",
    "yaml-recovered": "invalid YAML in frontmatter ({}); recovered by quoting the value of {}",
    "duplicate-key": "duplicate frontmatter key '{}'; the last value is used",
    "flow-style": "flow-style YAML value for '{}' is rejected by strict YAML parsers (skills-ref)",
    "name-missing": "missing 'name' field{}",
    "name-empty": "'name' is empty{}",
    "not-string": "'{}' should be a string; using {}",
    "name-too-long": "'name' is longer than 64 characters ({})",
    "name-chars": "'name' '{}' should use only lowercase letters a-z, digits and hyphens",
    "name-hyphen-edge": "'name' '{}' should not start or end with a hyphen",
    "name-double-hyphen": "'name' '{}' should not contain consecutive hyphens",
    "name-folder": "'name' '{}' does not match the folder name '{}'",
    "description-missing": "missing 'description' field",
    "description-empty": "'description' is empty",
    "description-too-long": "'description' is longer than 1024 characters ({})",
    "compatibility-empty": "'compatibility' is empty",
    "compatibility-too-long": "'compatibility' is longer than 500 characters ({})",
    "metadata-not-map": "'metadata' should be a map of strings to strings; ignoring it",
    "metadata-value": "'metadata' value for '{}' is not a string; using {}",
    "unknown-key": "unknown top-level key '{}' (not in the Agent Skills spec)",
    "harness-key": "top-level key '{}' is a {} extension, not in the Agent Skills spec",
    "value-too-large": "value of '{}' is too large or too deeply nested; dropped",
    "allowed-tools-list": "'allowed-tools' should be a space-separated string, not a YAML list",
    "allowed-tools-commas": "'allowed-tools' should be space-separated, not comma-separated",
    "allowed-tools-type": "'allowed-tools' should be a space-separated string; ignoring it",
    "body-lines": "body is {} lines; the spec recommends under 500",
    "body-tokens": "body is about {} tokens (estimated); the spec recommends under 5000",
}

_NAME_CHARS = re.compile(r"[a-z0-9-]+")
_RECOVERABLE = re.compile(r"^([A-Za-z0-9_-]+):[ \t]+(.*\S)[ \t]*$")


@attrs.frozen
class Extension:
    """An unknown top-level frontmatter key, kept with its value and origin."""

    key: str
    value: object  # JSON-compatible: str, int, float, bool, None, list, dict
    loc: Location
    harness: str | None = None  # who reads it, from HARNESS_KEYS


@attrs.frozen
class Frontmatter:
    """The frontmatter fields of a SKILL.md and where its body starts."""

    name: str
    description: str
    license: str | None
    compatibility: str | None
    metadata: tuple[tuple[str, str], ...]
    allowed_tools: tuple[str, ...]
    extensions: tuple[Extension, ...]
    body: str
    body_start_line: int
    key_locations: tuple[tuple[str, Location], ...]
    has_frontmatter: bool = True
    # True when 'name' was missing or empty and the folder name was used.
    name_from_folder: bool = False

    def location_of(self, key: str) -> Location | None:
        """Where top-level ``key`` is written, or None."""
        for k, loc in self.key_locations:
            if k == key:
                return loc
        return None


def estimate_tokens(text: str) -> int:
    """Offline token estimate: characters / 4."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def split_frontmatter(text: str) -> tuple[str | None, int, str, int, str | None]:
    """Split SKILL.md text into (yaml, yaml first line, body, body first line, problem).

    ``yaml`` is None when there is no (closed) frontmatter block; ``problem``
    is then the id in :data:`MESSAGES` of the reason, or None for an empty
    file. Line numbers are 1-based SKILL.md lines.
    """
    lines = text.split("\n")
    first = 0
    while first < len(lines) and not lines[first].strip():
        first += 1
    if first == len(lines) or lines[first].rstrip() != "---":
        return None, 0, text, 1, "no-frontmatter"
    for j in range(first + 1, len(lines)):
        if lines[j].rstrip() == "---":
            yaml_text = "\n".join(lines[first + 1 : j])
            body = "\n".join(lines[j + 1 :])
            return yaml_text, first + 2, body, j + 2, "not-line-1" if first else None
    return None, 0, text, 1, "unclosed"


def _to_json(value: object, budget: list[int], depth: int = 0) -> object:
    """Convert a YAML value to JSON-compatible data, bounded in size and depth."""
    budget[0] -= 1
    if budget[0] < 0 or depth > _JSON_MAX_DEPTH:
        raise OverflowError
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _to_json(v, budget, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_to_json(v, budget, depth + 1) for v in items]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _as_text(value: object) -> str:
    """A non-string scalar or collection as text (JSON for non-strings)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(_to_json(value, [_JSON_MAX_NODES]), ensure_ascii=False)
    except (OverflowError, RecursionError):
        return str(type(value).__name__)


def _split_tools(text: str, sep: str) -> list[str]:
    """Split an allowed-tools string on ``sep`` outside parentheses."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if depth == 0 and (ch == sep or (sep == " " and ch.isspace())):
            if "".join(cur).strip():
                out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def _recover(yaml_text: str) -> tuple[str, list[str]]:
    """Quote plain top-level values containing ': ' (client guide recovery)."""
    out, keys = [], []
    for line in yaml_text.split("\n"):
        m = _RECOVERABLE.match(line)
        if m and ": " in m.group(2) and m.group(2)[0] not in "\"'[{|>&*!":
            out.append(f"{m.group(1)}: {json.dumps(m.group(2), ensure_ascii=False)}")
            keys.append(m.group(1))
        else:
            out.append(line)
    return "\n".join(out), keys


def _compose(yaml_text: str):
    """Load a YAML document: (root node, [(key node, key, value node, value)]).

    The pair list is None when the root is not a mapping; values are built one
    by one so every key keeps its node (and so its location), duplicates too.
    """
    loader = _Loader(yaml_text)
    try:
        node = loader.get_single_node()
        if not isinstance(node, yaml.MappingNode):
            return node, None
        pairs = [
            (k, loader.construct_object(k, deep=True), v, loader.construct_object(v, deep=True))
            for k, v in node.value
        ]
    finally:
        loader.dispose()
    return node, pairs


class _Checker:
    """Reads one frontmatter mapping and reports spec departures."""

    def __init__(self, file: str, first_line: int, diag: DiagnosticEngine) -> None:
        self.file = file
        self.first_line = first_line
        self.diag = diag

    def loc(self, mark) -> Location:
        """SKILL.md location of a YAML mark."""
        return Location(self.file, self.first_line + mark.line, mark.column + 1)

    def warn(self, msg_id: str, loc: Location | None, *args: object) -> None:
        """Report warning ``msg_id`` from :data:`MESSAGES`."""
        self.diag.warning(MESSAGES[msg_id].format(*args), loc)


def _yaml_error(file: str, first_line: int, exc: Exception) -> Diagnostic:
    """A located error diagnostic for a YAML exception (context as a note)."""

    def at(mark) -> Location:
        return Location(file, first_line + mark.line, mark.column + 1)

    problem_mark = getattr(exc, "problem_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).split("\n")[0] or type(exc).__name__
    if isinstance(exc, RecursionError):
        problem = "nested too deeply"
    mark = problem_mark or context_mark
    loc = at(mark) if mark else Location(file, max(1, first_line - 1), 1)
    notes = ()
    context = getattr(exc, "context", None)
    if context and context_mark is not None and mark is not context_mark:
        notes = (Diagnostic(Severity.NOTE, context, at(context_mark)),)
    return Diagnostic(Severity.ERROR, f"invalid YAML in frontmatter: {problem}", loc, notes)


def parse_frontmatter(
    text: str,
    file: str = "SKILL.md",
    folder_name: str | None = None,
    diag: DiagnosticEngine | None = None,
) -> Frontmatter:
    """Parse and check the frontmatter of SKILL.md ``text``.

    Args:
        text: the whole SKILL.md (a BOM and CRLF line ends are accepted).
        file: the name diagnostics use for SKILL.md.
        folder_name: the skill folder's name, for the name check and as the
            fallback name; None skips both.
        diag: where warnings go (also registers ``text`` with its sources so
            they quote the line); None keeps them silent.

    Raises:
        SkvmError: the YAML does not parse, even after recovery.
    """
    if diag is None:
        diag = DiagnosticEngine(stream=None)
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    diag.sources.add(file, text)
    check = _Checker(file, 0, diag)
    yaml_text, first_line, body, body_start, problem = split_frontmatter(text)
    check.first_line = first_line
    if problem is not None:
        check.warn(problem, Location(file, 1, 1))

    node = loaded = None
    if yaml_text is not None:
        try:
            node, loaded = _compose(yaml_text)
        except (yaml.YAMLError, RecursionError) as exc:
            error = _yaml_error(file, first_line, exc)
            fixed, keys = _recover(yaml_text)
            try:
                if not keys:
                    raise ValueError("nothing to recover")
                node, loaded = _compose(fixed)
            except (yaml.YAMLError, RecursionError, ValueError):
                raise SkvmError(error) from None
            problem_text = error.message.split(": ", 1)[1]
            quoted = ", ".join(f"'{k}'" for k in keys)
            check.warn("yaml-recovered", error.loc, problem_text, quoted)

    pairs: list[tuple[str, object, Location, Location, object]] = []
    if node is not None and loaded is None:
        check.warn("not-mapping", check.loc(node.start_mark))
    for key_node, key, value_node, value in loaded or ():
        name = key if isinstance(key, str) else _as_text(key)
        if any(p[0] == name for p in pairs):
            check.warn("duplicate-key", check.loc(key_node.start_mark), name)
            pairs = [p for p in pairs if p[0] != name]
        pairs.append(
            (
                name,
                value,
                check.loc(key_node.start_mark),
                check.loc(value_node.start_mark),
                value_node,
            )
        )

    return _check_fields(check, pairs, folder_name, body, body_start, yaml_text is not None)


def _check_fields(check, pairs, folder_name, body, body_start, has_frontmatter) -> Frontmatter:
    """Validate the fields against the spec and build the Frontmatter."""
    fields = {key: (value, kloc, vloc, vnode) for key, value, kloc, vloc, vnode in pairs}
    start = Location(check.file, 1, 1)

    def text_field(key: str) -> str | None:
        if key not in fields:
            return None
        value, _kloc, vloc, _ = fields[key]
        if value is None:
            return ""
        if not isinstance(value, str):
            text = _as_text(value)
            check.warn("not-string", vloc, key, repr(text))
            return text
        return value

    for key, (_value, kloc, _vloc, vnode) in fields.items():
        if getattr(vnode, "flow_style", False) and isinstance(
            vnode, (yaml.SequenceNode, yaml.MappingNode)
        ):
            check.warn("flow-style", kloc, key)

    # name
    name = text_field("name")
    name_from_folder = False
    fallback = f"; using the folder name '{folder_name}'" if folder_name else ""
    if name is None or not name.strip():
        where = fields["name"][2] if name is not None else start
        check.warn("name-missing" if name is None else "name-empty", where, fallback)
        name, name_from_folder = folder_name or "", True
    else:
        where = fields["name"][2]
        if len(name) > NAME_MAX:
            check.warn("name-too-long", where, len(name))
        if not _NAME_CHARS.fullmatch(name):
            check.warn("name-chars", where, name)
        if name.startswith("-") or name.endswith("-"):
            check.warn("name-hyphen-edge", where, name)
        if "--" in name:
            check.warn("name-double-hyphen", where, name)
        if folder_name and unicodedata.normalize("NFKC", name) != unicodedata.normalize(
            "NFKC", folder_name
        ):
            check.warn("name-folder", where, name, folder_name)

    # description
    description = text_field("description")
    if description is None:
        check.warn("description-missing", start)
        description = ""
    elif not description.strip():
        check.warn("description-empty", fields["description"][2])
    elif len(description) > DESCRIPTION_MAX:
        check.warn("description-too-long", fields["description"][2], len(description))

    license_ = text_field("license")
    compatibility = text_field("compatibility")
    if compatibility is not None:
        if not compatibility.strip():
            check.warn("compatibility-empty", fields["compatibility"][2])
        elif len(compatibility) > COMPATIBILITY_MAX:
            check.warn("compatibility-too-long", fields["compatibility"][2], len(compatibility))

    metadata: list[tuple[str, str]] = []
    if "metadata" in fields and fields["metadata"][0] is not None:
        value, _kloc, vloc, vnode = fields["metadata"]
        if not isinstance(value, dict):
            check.warn("metadata-not-map", vloc)
        else:
            value_locs = {}
            if isinstance(vnode, yaml.MappingNode):
                value_locs = {str(k.value): check.loc(v.start_mark) for k, v in vnode.value}
            for k, v in value.items():
                key = _as_text(k)
                if not isinstance(v, str):
                    v = _as_text(v)
                    check.warn("metadata-value", value_locs.get(key, vloc), key, repr(v))
                metadata.append((key, v))

    allowed: list[str] = []
    if "allowed-tools" in fields and fields["allowed-tools"][0] is not None:
        value, _kloc, vloc, _ = fields["allowed-tools"]
        if isinstance(value, list):
            check.warn("allowed-tools-list", vloc)
            allowed = [_as_text(v).strip() for v in value if _as_text(v).strip()]
        elif isinstance(value, str):
            commas = _split_tools(value, ",")
            if len(commas) > 1:
                check.warn("allowed-tools-commas", vloc)
                allowed = commas
            else:
                allowed = _split_tools(value, " ")
        else:
            check.warn("allowed-tools-type", vloc)

    extensions: list[Extension] = []
    for key, (value, kloc, _vloc, _) in fields.items():
        if key in SPEC_KEYS:
            continue
        harness = HARNESS_KEYS.get(key)
        if harness:
            check.warn("harness-key", kloc, key, harness)
        else:
            check.warn("unknown-key", kloc, key)
        try:
            converted = _to_json(value, [_JSON_MAX_NODES])
        except (OverflowError, RecursionError):
            check.warn("value-too-large", kloc, key)
            converted = None
        extensions.append(Extension(key, converted, kloc, harness))

    body_lines = len(body.splitlines())
    if body_lines > BODY_MAX_LINES:
        check.warn("body-lines", Location(check.file, body_start + BODY_MAX_LINES, 1), body_lines)
    tokens = estimate_tokens(body)
    if tokens > BODY_MAX_TOKENS:
        check.warn("body-tokens", Location(check.file, body_start, 1), tokens)

    return Frontmatter(
        name=name,
        description=description,
        license=license_,
        compatibility=compatibility,
        metadata=tuple(metadata),
        allowed_tools=tuple(allowed),
        extensions=tuple(extensions),
        body=body,
        body_start_line=body_start,
        key_locations=tuple((key, kloc) for key, (_v, kloc, _vl, _n) in fields.items()),
        has_frontmatter=has_frontmatter,
        name_from_folder=name_from_folder,
    )
