"""The ``secure{mode=report|block}`` transform: static security analysis of a skill.

It walks the IR, hands each piece of text to the rule engine of
:mod:`skvm.passes.transforms.secure_rules` with the right kind, and turns
every finding into a located diagnostic ``[SEC001] <message>: <excerpt>``:

============================================  ==========================================
IR                                            scanned as
============================================  ==========================================
``tool.exec`` argv / shell line, ``check.cmd``  ``command``
``tool.script`` (script path and arguments)   ``command``; the script file as ``code``
``tool.read`` / ``tool.write`` paths,         ``command`` (credential paths, persistence,
``tool.fetch`` URL                            suspicious endpoints)
``ctx.example`` (with ``lang``)               ``code`` (shell languages also ``command``)
``ctx.text``, ``ctx.rule``, ``ctx.ref`` text, ``prose`` (an ``html_comment`` text is
``llm.step``/``llm.gen`` prompt,              wrapped in ``<!-- -->`` so the hidden-
``llm.judge`` question                        instruction rule sees it)
``skill.meta``                                ``frontmatter`` (``key: value`` lines)
``skill.resource {kind = script}``            ``code``, when ``ctx.extra["skill_root"]``
                                              names the skill folder
============================================  ==========================================

On top of the text rules, a skill that declares ``allowed_tools`` gets a
``SEC100`` (``tool-not-allowed``, warning) for every ``tool.exec``,
``tool.script``, ``tool.write`` or ``tool.fetch`` that those tools do not
permit.

Severities: in ``report`` mode (the default) every error or warning finding
is printed as a warning and the exit code stays 0; in ``block`` mode
error-severity findings are errors (the driver exits 1). Notes stay notes.
Locations point into the source when the scanned text can be found on the
lines at and after the op's location; otherwise at the op. The IR is never
changed. Counters: ``secure.findings`` and ``secure.findings.<rule id>``.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Iterator
from pathlib import Path

import attrs

from skvm.diagnostics import Diagnostic, DiagnosticEngine, Location, Severity
from skvm.ir.attributes import Keyword, SymbolRef, ValueRef, to_python
from skvm.ir.operation import Module, Op
from skvm.passes.base import ModulePass, PassContext, PassResult
from skvm.passes.transforms import secure_rules
from skvm.passes.transforms.secure_rules import Finding

NAME = "secure"
MODES = ("report", "block")

#: Findings from IR structure rather than text (ids from SEC100 on).
TOOL_NOT_ALLOWED = ("SEC100", "tool-not-allowed", "warning", "tool used outside allowed-tools")

#: Largest bundled script read from disk (bytes).
MAX_SCRIPT_BYTES = 1_000_000

#: Extension of a bundled script -> language for the rule engine.
SCRIPT_LANGS: dict[str, str] = {
    ".py": "python", ".sh": "bash", ".bash": "bash", ".zsh": "zsh", ".js": "javascript",
    ".mjs": "javascript", ".cjs": "javascript", ".ts": "typescript", ".rb": "ruby",
    ".pl": "perl", ".php": "php", ".ps1": "powershell", ".bat": "bat", ".cmd": "cmd",
}

#: Extension -> commands that run such a script (any one allowed is enough).
SCRIPT_RUNNERS: dict[str, tuple[str, ...]] = {
    ".py": ("python", "python3", "uv run"),
    ".sh": ("bash", "sh"),
    ".bash": ("bash",),
    ".js": ("node",),
    ".mjs": ("node",),
    ".ts": ("npx tsx", "bun", "deno run"),
    ".rb": ("ruby",),
    ".pl": ("perl",),
}

#: Harness tools that may perform each IR tool op (allowed when any is allowed).
TOOLS_FOR_OP: dict[str, tuple[str, ...]] = {
    "tool.exec": ("Bash",),
    "tool.script": ("Bash",),
    "tool.write": ("Write", "Edit", "MultiEdit"),
    "tool.fetch": ("WebFetch", "Fetch"),
}

_SEVERITY_BY_MODE: dict[tuple[str, str], Severity] = {
    ("report", "error"): Severity.WARNING,
    ("report", "warning"): Severity.WARNING,
    ("report", "note"): Severity.NOTE,
    ("block", "error"): Severity.ERROR,
    ("block", "warning"): Severity.WARNING,
    ("block", "note"): Severity.NOTE,
}


@attrs.frozen
class Scan:
    """One piece of text to scan: its kind, language and where it came from."""

    kind: str
    text: str
    op: Op
    lang: str | None = None
    #: Characters added around the op's own text (``<!--`` and ``-->``).
    prefix: int = 0
    suffix: int = 0
    #: The file the text is the whole content of (bundled scripts), if any.
    file: str | None = None


# ---------------------------------------------------------------------------
# what to scan
# ---------------------------------------------------------------------------


def _argv_item(item, module: Module) -> str:
    if isinstance(item, str):
        return shlex.quote(item) if item else "''"
    if isinstance(item, SymbolRef):
        res = module.lookup(item.name)
        path = res.attr("path") if res is not None else None
        return shlex.quote(path) if isinstance(path, str) else f"@{item.name}"
    if isinstance(item, ValueRef):
        # argv elements are separate arguments: no shell splits them.
        return f'"${item.name}"'
    return shlex.quote(str(to_python(item)))


def command_line(op: Op, module: Module) -> str:
    """The command line of a ``tool.exec`` / ``check.cmd`` as a shell would read it."""
    argv = op.attr("argv", ())
    if not isinstance(argv, tuple):
        return ""
    if op.has_attr("shell") and len(argv) == 1 and isinstance(argv[0], str):
        return argv[0]
    return " ".join(_argv_item(a, module) for a in argv)


def _script_path(op: Op, module: Module) -> str | None:
    ref = op.attr("script")
    res = module.lookup(ref.name) if isinstance(ref, SymbolRef) else None
    path = res.attr("path") if res is not None else None
    return path if isinstance(path, str) else None


def _script_line(op: Op, module: Module) -> str:
    path = _script_path(op, module) or f"@{op.attr('script').name}"
    args = op.attr("args", ())
    rest = " ".join(_argv_item(a, module) for a in args) if isinstance(args, tuple) else ""
    return f"{shlex.quote(path)} {rest}".strip()


def _frontmatter(meta: Op) -> str:
    lines = []
    for key, value in meta.attributes.items:
        plain = to_python(value)
        if isinstance(plain, list):
            plain = ", ".join(str(v) for v in plain)
        elif isinstance(plain, dict):
            plain = ", ".join(f"{k}: {v}" for k, v in plain.items())
        lines.append(f"{key.replace('_', '-')}: {plain}")
    return "\n".join(lines)


def _text_attr(op: Op, key: str) -> str | None:
    value = op.attr(key)
    return value if isinstance(value, str) and value else None


#: Prose-carrying ops -> their text attributes.
_PROSE_KEYS: dict[str, tuple[str, ...]] = {
    "ctx.text": ("text",), "ctx.rule": ("text",), "ctx.ref": ("when", "text"),
    "llm.step": ("prompt",), "llm.gen": ("prompt",), "llm.judge": ("question",),
}


def _prose_scans(op: Op) -> Iterator[Scan]:
    """Prose of context and model ops."""
    name = op.name
    for key in _PROSE_KEYS[name]:
        text = _text_attr(op, key)
        if text is None:
            continue
        if name == "ctx.text" and op.has_attr("html_comment") and "<!--" not in text:
            yield Scan("prose", f"<!--{text}-->", op, prefix=4, suffix=3)
        else:
            yield Scan("prose", text, op)


def _path_scan(op: Op, key: str) -> Iterator[Scan]:
    value = op.attr(key)
    if isinstance(value, str) and value:
        yield Scan("command", value, op)


def scans_of(op: Op, module: Module) -> Iterator[Scan]:
    """The texts of one op to hand to the rule engine."""
    name = op.name
    if name in ("tool.exec", "check.cmd"):
        line = command_line(op, module)
        if line:
            yield Scan("command", line, op)
    elif name == "tool.script":
        yield Scan("command", _script_line(op, module), op)
    elif name in ("tool.read", "tool.write"):
        yield from _path_scan(op, "path")
    elif name == "tool.fetch":
        yield from _path_scan(op, "url")
    elif name == "ctx.example":
        code = _text_attr(op, "code")
        if code is not None:
            yield Scan("code", code, op, lang=_text_attr(op, "lang"))
    elif name in _PROSE_KEYS:
        yield from _prose_scans(op)
    elif name == "skill.meta":
        text = _frontmatter(op)
        if text:
            yield Scan("frontmatter", text, op)


def script_scans(module: Module, skill_root: str | Path | None) -> Iterator[Scan]:
    """Bundled scripts read from ``skill_root`` (nothing when it is unknown)."""
    if not skill_root:
        return
    root = Path(skill_root)
    for res in module.resources():
        kind = res.attr("kind")
        path = res.attr("path")
        if not (isinstance(kind, Keyword) and kind.name == "script" and isinstance(path, str)):
            continue
        file = root / path
        try:
            if not file.is_file() or file.stat().st_size > MAX_SCRIPT_BYTES:
                continue
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        lang = SCRIPT_LANGS.get(file.suffix.lower())
        if lang is None and text.startswith("#!"):
            first = text.split("\n", 1)[0]
            lang = "bash" if "sh" in first.rsplit("/", 1)[-1] else None
        yield Scan("code", text, res, lang=lang or "", file=path)


# ---------------------------------------------------------------------------
# allowed-tools
# ---------------------------------------------------------------------------


def _allowed(allowed, op: Op, module: Module) -> bool:
    """Whether ``allowed`` (allowed-tools entries) permits ``op``."""
    name = op.name
    candidates: list[tuple[str, str | None]] = []
    if name == "tool.exec":
        candidates = [("Bash", command_line(op, module))]
    elif name == "tool.script":
        path = _script_path(op, module)
        line = _script_line(op, module)
        runners = SCRIPT_RUNNERS.get(Path(path).suffix.lower(), ()) if path else ()
        candidates = [("Bash", line)] + [("Bash", f"{r} {line}") for r in runners]
    elif name in ("tool.write", "tool.fetch"):
        target = op.attr("path" if name == "tool.write" else "url")
        target = target if isinstance(target, str) else None
        candidates = [(tool, target) for tool in TOOLS_FOR_OP[name]]
        if name == "tool.fetch" and target:
            candidates.append(("Bash", f"curl {target}"))
    return any(secure_rules.tool_allowed(allowed, tool, cmd) for tool, cmd in candidates)


def _allowed_tools(module: Module):
    meta = module.meta
    value = meta.attr("allowed_tools") if meta is not None else None
    if value is None:
        return None
    return tuple(str(v) for v in to_python(value)) if isinstance(value, tuple) else str(value)


# ---------------------------------------------------------------------------
# locations
# ---------------------------------------------------------------------------


def _offset_position(text: str, offset: int) -> tuple[int, int]:
    """0-based (line, column) of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return line, offset - start


def locate(scan: Scan, offset: int, sources) -> Location | None:
    """Where a finding at ``offset`` of ``scan.text`` is in the source, else the op."""
    if scan.file is not None:
        line, col = _offset_position(scan.text, offset)
        return Location(scan.file, line + 1, col + 1)
    loc = scan.op.location
    if loc is None or sources is None:
        return loc
    text = scan.text[scan.prefix:len(scan.text) - scan.suffix]
    own = min(max(0, offset - scan.prefix), len(text))
    line_index, col = _offset_position(text, own)
    text_line = text.split("\n")[line_index] if text else ""
    # A needle from the finding to the end of its line, short enough to survive
    # reflowed paragraphs; found on the lines at and after the op's location.
    needle = text_line[col:col + 30].rstrip()
    if not needle:
        return loc
    window = text.count("\n") + 6
    first = loc.line + line_index
    for k in range(window):
        source = sources.line(loc.file, first + k)
        if source is None:
            break
        at = source.find(needle, loc.col - 1 if k == 0 and line_index == 0 else 0)
        if at >= 0:
            return Location(loc.file, first + k, at + 1)
    return loc


# ---------------------------------------------------------------------------
# the pass
# ---------------------------------------------------------------------------


@attrs.frozen
class SecureFinding:
    """A finding placed in the skill: the rule's finding and its location."""

    finding: Finding
    loc: Location | None

    @property
    def message(self) -> str:
        """``[SEC001] message: excerpt``."""
        f = self.finding
        return f"[{f.rule}] {f.message}: {f.excerpt}" if f.excerpt else f"[{f.rule}] {f.message}"


def find_issues(module: Module, skill_root: str | Path | None = None,
                sources=None, disabled: frozenset[str] = frozenset()) -> list[SecureFinding]:
    """Every finding of ``module``, deduplicated, in a stable order."""
    allowed = _allowed_tools(module)
    out: list[SecureFinding] = []
    seen: set[tuple] = set()

    def add(finding: Finding, loc: Location | None) -> None:
        key = (finding.rule, loc, finding.excerpt)
        if finding.rule in disabled or key in seen:
            return
        seen.add(key)
        out.append(SecureFinding(finding, loc))

    scans: list[Scan] = []
    tool_ops: list[Op] = []
    for op in module.walk():
        scans.extend(scans_of(op, module))
        if op.name in TOOLS_FOR_OP:
            tool_ops.append(op)
    scans.extend(script_scans(module, skill_root))
    for scan in scans:
        for finding in scan_text(scan.kind, scan.text, scan.lang):
            add(finding, locate(scan, finding.offset, sources))
    if allowed is not None:
        rule, rule_name, severity, message = TOOL_NOT_ALLOWED
        for op in tool_ops:
            if not _allowed(allowed, op, module):
                shown = (command_line(op, module) if op.name == "tool.exec"
                         else _script_line(op, module) if op.name == "tool.script"
                         else str(op.attr("path") or op.attr("url") or ""))
                excerpt = secure_rules._excerpt(shown, 0, len(shown)) if shown else op.name
                add(Finding(rule, severity, f"{message} ({op.name})", 0, excerpt, rule_name),
                    op.location)
    return out


@functools.lru_cache(maxsize=8192)
def scan_text(kind: str, text: str, lang: str | None = None) -> tuple[Finding, ...]:
    """:func:`secure_rules.scan`, memoized for the process.

    The rules are a pure function of the text, and a warm process (a driver
    compiling one skill for several targets, an editor re-running the
    pipeline) sees the same paragraphs again: scanning is most of this
    pass's time, so each distinct text is scanned once.
    """
    return tuple(secure_rules.scan(kind, text, lang=lang))


def _sort_key(item: SecureFinding) -> tuple:
    loc = item.loc
    return (loc is None, loc.file if loc else "", loc.line if loc else 0,
            loc.col if loc else 0, item.finding.rule)


@attrs.frozen
class Secure(ModulePass):
    """Reports (or blocks on) security findings as located diagnostics; never changes the IR."""

    name = NAME
    summary = "static security analysis: remote code, secrets, exfiltration, injection, allowed-tools"

    mode: str = attrs.field(default="report")
    #: Rule ids to skip (``disable=SEC017,SEC025``).
    disable: tuple[str, ...] = ()

    @mode.validator
    def _check_mode(self, attribute, value) -> None:
        if value not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got '{value}'")

    def run(self, module: Module, am, ctx: PassContext) -> PassResult:
        """Scan ``module`` and report its findings; the module is returned unchanged."""
        engine: DiagnosticEngine = ctx.diagnostics
        issues = find_issues(
            module, ctx.extra.get("skill_root"), engine.sources, frozenset(self.disable)
        )
        found: dict[str, int] = {}
        for item in sorted(issues, key=_sort_key):
            severity = _SEVERITY_BY_MODE[(self.mode, item.finding.severity)]
            engine.report(Diagnostic(severity, item.message, item.loc))
            for key in ("findings", f"findings.{item.finding.rule}"):
                found[key] = found.get(key, 0) + 1
        ctx.add_stats(found, prefix=NAME)
        return self.unchanged(module)


__all__ = [
    "MODES",
    "TOOL_NOT_ALLOWED",
    "Scan",
    "Secure",
    "SecureFinding",
    "command_line",
    "find_issues",
    "locate",
    "scan_text",
    "scans_of",
    "script_scans",
]
