"""Lower a parsed skill (frontmatter + Markdown blocks + bundle) to SkIR.

The conventions (what becomes what) are documented in ``docs/frontend.md``;
back ends that regenerate Markdown rely on them to be an inverse:

* module level, in source order: ``skill.meta``, one ``skill.resource`` per
  bundled file, ``env.require`` per dependency, then the context stream:
  one ``ctx.text`` per heading (``title``, ``level``, the prose up to the
  next non-prose block), ``ctx.text "" …`` for later prose runs of the same
  section, ``ctx.example`` per code block outside procedures, ``ctx.rule
  {inline}`` per rule sentence (the sentence also stays in its prose),
  ``ctx.ref @resource`` at the first mention of a bundled file, and
  ``ctx.ref @proc`` where a procedure's list stood;
* procedures (ordered lists, "Step N" headings, bullet lists under
  workflow-like headings) become ``skill.proc`` ops whose steps are
  ``llm.step`` (with ``caps`` and ``evidence``), or ``tool.exec`` /
  ``tool.script`` for steps that are concrete commands, ``ctl.for_each``
  for "for each …" steps, ``ctl.if`` + ``llm.judge`` for "if …" steps and
  ``env.if`` for platform / tool-presence conditions;
* ``proc @main(%task: text) -> text`` always exists: the only procedure, a
  dispatcher over several, or a single step doing the task with the skill's
  guidance.

For Markdown back ends (the ``agentskills`` round trip): ops restating the
text are ``inline``; ops built from the layout or a step's wording are
``synthetic``; the op carrying a step's text keeps its source ``marker``
(``origin`` holds a command step's text). When the folder was emitted by
skvm, the manifest's ``moved_to_metadata`` and ``original`` entries are undone
in ``skill.meta``.
"""

from __future__ import annotations

import bisect
import json
import re
import shlex
import textwrap
from collections.abc import Iterator, Sequence

import attrs

from skvm.diagnostics import DiagnosticEngine, Location
from skvm.frontend import dependencies as deps
from skvm.frontend.capability_rules import CASE_FOLD_TRAPS, step_capabilities
from skvm.frontend.folder import SkillSource
from skvm.frontend.frontmatter import Frontmatter
from skvm.frontend.markdown import (
    Block,
    BlockQuote,
    CodeBlock,
    Heading,
    HtmlComment,
    ListBlock,
    ListItem,
    Paragraph,
    Table,
)
from skvm.ir import types as T
from skvm.ir.attributes import UNIT, Cap, DictAttr, Keyword, SymbolRef, TypeAttr
from skvm.ir.operation import Module, Op, Region, Value

# ---------------------------------------------------------------------------
# Tables

#: Headings under which a bullet list is a procedure.
WORKFLOW_HEADING = re.compile(
    r"\b(workflow|procedure|steps?|process|how to|instructions|usage|getting started|quick ?start|"
    r"checklist|method|algorithm|playbook|runbook)\b",
    re.IGNORECASE,
)
#: Headings that are one step of a procedure.
STEP_HEADING = re.compile(r"^\s*(?:step|phase|stage)\s*\d+\b", re.IGNORECASE)
#: Code block languages that are shell commands.
SHELL_LANGS = frozenset({"bash", "sh", "shell", "zsh", "console", "shell-session", "terminal", "cmd", "fish"})
#: Rule words -> severity (first match wins; checked in order).
RULE_PATTERNS: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"\b(?:MUST NOT|NEVER|DO NOT|DON'T|SHALL NOT)\b"), "never"),
    (re.compile(r"\b(?:never|do not|don't|must not|must never)\b", re.IGNORECASE), "never"),
    (re.compile(r"\b(?:MUST|ALWAYS|REQUIRED|SHALL)\b"), "must"),
    (re.compile(r"\b(?:must|always)\b", re.IGNORECASE), "must"),
    (re.compile(r"\bSHOULD\b|\bavoid\b", re.IGNORECASE), "should"),
)
#: Any rule word (no rule word matches across a sentence break, so one scan
#: of a whole text finds the sentences worth trying RULE_PATTERNS on).
_ANY_RULE_WORD = re.compile(
    "|".join(
        f"(?i:{pattern.pattern})" if pattern.flags & re.IGNORECASE else f"(?:{pattern.pattern})"
        for pattern, _severity in RULE_PATTERNS
    )
)
#: Lowercase words every rule word starts with ("MUST NOT" with "must").
_RULE_WORD_STARTS = ("must", "never", "do not", "don't", "always", "required", "shall", "should", "avoid")
#: Step openings that make a step conditional: (pattern, kind).
PLATFORM_CONDITIONS: tuple[tuple[re.Pattern, str, str], ...] = (
    (re.compile(r"^\W*(?:on|for|if (?:you(?:'re| are) )?(?:on|using))\s+(?:macos|mac os|os x|a mac)\b", re.IGNORECASE), "os", "macos"),
    (re.compile(r"^\W*(?:on|for|if (?:you(?:'re| are) )?(?:on|using))\s+windows\b", re.IGNORECASE), "os", "windows"),
    (re.compile(r"^\W*(?:on|for|if (?:you(?:'re| are) )?(?:on|using))\s+linux\b", re.IGNORECASE), "os", "linux"),
)
#: How every PLATFORM_CONDITIONS pattern starts: most steps fail this one match
#: instead of all three.
_PLATFORM_OPENING = re.compile(r"^\W*(?:on|for|if)\s", re.IGNORECASE)
_TOOL_MISSING = re.compile(
    r"^\W*if\s+`?(?P<bin>[A-Za-z0-9][A-Za-z0-9._+-]*)`?\s+is\s+(?P<neg>not|n't)?\s*(?:installed|available|present|missing|on (?:your )?PATH)",
    re.IGNORECASE,
)
_CONDITION = re.compile(r"^\W*(?P<word>if|when|unless)\s+(?P<cond>[^,:\n]{3,160}?)\s*[,:]\s*(?P<rest>\S.*)", re.IGNORECASE | re.DOTALL)
_OTHERWISE = re.compile(r"^\W*(?:otherwise|else)\b[,:]?", re.IGNORECASE)
_LOOP = re.compile(r"\b(?:for each|for every|for all|all (?:the )?files in|each of the|iterate over)\b", re.IGNORECASE)
#: Placeholders that make a command a template the model must fill in.
_PLACEHOLDER = re.compile(
    r"<[^>\s][^>]*>|\{[A-Za-z_][^}]*\}|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\.\.\.|path/to|YOUR_|your-|\bXXX\b|\[[A-Za-z _-]+\]"
)
_COMMAND_WORD = re.compile(r"^(?:\$\s+)?(?:python3?|bash|sh|node|npm|npx|pip3?|uv|uvx|git|gh|make|pytest|docker|cargo|go|ruby|deno|bun)\b")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_LINK_TARGET = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
_PATH_MENTION = re.compile(r"(?<![\w.-])((?:scripts|references|reference|assets|templates|examples|docs|resources|agents)/[A-Za-z0-9_.\-/]+[A-Za-z0-9_])")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*\"'(\[])|\n(?=\s*[-*+]\s)|\n\s*\n")
_SCRIPT_INTERPRETERS = {"python": ".py", "python3": ".py", "bash": ".sh", "sh": ".sh", "node": ".js", "uv": ".py"}
_PROMPT_TEXT_LIMIT = 20000
#: The list marker (and task checkbox) in front of a step's text.
_ITEM_MARKER = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?")
#: The hashes in front of a "Step N" heading.
_HEADING_MARKER = re.compile(r"^#{1,6}[ \t]+")
_NOT_ALNUM_RUN = re.compile(r"[^A-Za-z0-9]+")
_SHELL_EXPANSION = re.compile(r"\$\(|`|\$\{?[A-Za-z_]")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_GLOB = re.compile(r"(?<![\w])[*?](?![\w])|\*\.|\w\*")
_FENCE_LINE = re.compile(r"```[^\n]*|~~~[^\n]*")
#: Lines of blanks, which ``textwrap.dedent`` empties (its own pattern).
_WHITESPACE_ONLY_LINE = re.compile(r"^[ \t]+$", re.MULTILINE)
#: The capabilities of the model calls the lowering adds: a judge deciding a
#: condition, and the listing of a loop's items (attributes are immutable, so
#: every op shares one tuple).
_JUDGE_CAPS = (Cap("reason.logic", 1),)
_LISTING_CAPS = (Cap("gen.text.structured", 1),)
#: Meta keys an export manifest's ``original`` may restore (values a target normalised).
META_RESTORABLE = frozenset({"name", "description", "compatibility"})


# ---------------------------------------------------------------------------
# Helpers


def symbol_for(text: str, taken: set[str], prefix: str = "") -> str:
    """A symbol name derived from ``text``, unique in ``taken`` (which it updates)."""
    base = _NOT_ALNUM_RUN.sub("_", text).strip("_").lower() or "x"
    if prefix and not base.startswith(prefix):
        base = prefix + base
    if base[0].isdigit():
        base = "_" + base
    base = base[:48]
    name = base
    n = 2
    while name in taken:
        name = f"{base}_{n}"
        n += 1
    taken.add(name)
    return name


def is_shell_block(block: CodeBlock) -> bool:
    """Whether a code block holds shell commands."""
    lang = (block.lang or "").lower()
    if lang in SHELL_LANGS:
        return True
    if lang:
        return False
    lines = [ln for ln in block.code.split("\n") if ln.strip() and not ln.strip().startswith("#")]
    return bool(lines) and all(_COMMAND_WORD.match(ln.strip()) for ln in lines)


def command_lines(code: str) -> list[str]:
    """The commands of a shell block: comments and prompts removed, continuations joined."""
    commands: list[str] = []
    pending = ""
    for raw in code.split("\n"):
        line = raw.rstrip()
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        stripped = stripped.removeprefix("$ ")
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        commands.append((pending + stripped).strip())
        pending = ""
    if pending.strip():
        commands.append(pending.strip())
    return [c for c in commands if c]


#: Characters without which a command line is plain words (no shell, no quoting).
_SHELL_OR_QUOTE = frozenset("|&;<>()$`*?[]{}~'\"\\#=")


def split_words(command: str) -> list[str]:
    """Split a command line into words like a POSIX shell would (quotes honoured)."""
    if _SHELL_OR_QUOTE.isdisjoint(command):
        return command.split()  # nothing for shlex to interpret: the fast path
    return shlex.split(command)


def needs_shell(command: str) -> bool:
    """Whether a command line uses shell syntax (pipes, redirections, expansions)."""
    if _SHELL_OR_QUOTE.isdisjoint(command):
        return False
    if _SHELL_EXPANSION.search(command):
        return True
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        return True
    for token in tokens:
        if token and all(c in "|&;<>()" for c in token):
            return True
    # Unquoted globs need the shell to expand them.
    unquoted = _QUOTED.sub("", command)
    return bool(_GLOB.search(unquoted))


def is_concrete(command: str) -> bool:
    """Whether a command can run as written (no placeholders for the model to fill)."""
    return not _PLACEHOLDER.search(command)


@attrs.frozen
class StepSource:
    """One step of a procedure as found in the Markdown."""

    text: str
    loc: Location
    code: tuple[CodeBlock, ...]
    substeps: int
    # What preceded ``text`` in the source: the list marker ("1. ", "- [ ] ") or heading hashes.
    marker: str = ""


@attrs.frozen
class Procedure:
    """A procedure found in the Markdown: a title and its steps."""

    title: str
    loc: Location
    steps: tuple[StepSource, ...]
    symbol: str


# ---------------------------------------------------------------------------
# The lowering


class Lowering:
    """Builds a module from one skill; collects warnings on ``diag``."""

    def __init__(self, source: SkillSource, front: Frontmatter, blocks: Sequence[Block],
                 diag: DiagnosticEngine):
        self.source = source
        self.front = front
        self.blocks = list(blocks)
        self.diag = diag
        self.file = source.display_name
        self.lines = source.text.split("\n")
        self.symbols: set[str] = {"main"}
        self.resource_symbols: dict[str, str] = {}
        # (path, characters that may not precede it) of the files a text can mention by name.
        self.mentionable: list[tuple[str, str]] = []
        self.mentionable_bare: list[tuple[str, str]] = []
        self.referenced: set[str] = set()
        self.warned_missing: set[str] = set()
        self.procedures: list[Procedure] = []
        # The context stream, possibly nested in env.if regions (a stack of lists).
        self.stream: list[list[Op]] = [[]]
        self.platform_depth: list[int] = []
        self.requirements: dict[tuple[str, str], Op] = {}

    # -- entry ------------------------------------------------------------------
    def run(self) -> Module:
        """Lower everything; return the module."""
        meta = self._meta()
        resources = self._resources()
        self._collect_dependencies()
        self._context()
        procs = self._procs()
        top = [meta, *resources, *self._requirement_ops(), *self.stream[0], *procs]
        return Module(self._module_symbol(), Region(top))

    def loc(self, line: int, col: int = 1) -> Location:
        """A location in SKILL.md."""
        return Location(self.file, max(1, line), max(1, col))

    def _module_symbol(self) -> str:
        name = self.front.name
        if self.source.export is not None:
            name = next((b for k, b, a in self.source.export.original if k == "name" and a == name), name)
        return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower() or "skill"

    # -- frontmatter and bundle ----------------------------------------------------
    def _meta(self) -> Op:
        front = self.front
        attributes: dict = {"name": front.name, "description": front.description}
        if front.license is not None:
            attributes["license"] = front.license
        if front.compatibility is not None:
            attributes["compatibility"] = front.compatibility
        if front.allowed_tools:
            attributes["allowed_tools"] = tuple(front.allowed_tools)
        metadata = dict(front.metadata)
        extensions = {
            ext.key: json.dumps(ext.value, ensure_ascii=False, sort_keys=True) for ext in front.extensions
        }
        export = self.source.export
        if export is not None:
            # A folder skvm emitted: undo what the target's spec forced on the frontmatter,
            # where the frontmatter still holds what the back end wrote.
            for key, before, after in export.original:
                if key in META_RESTORABLE and attributes.get(key) == after:
                    attributes[key] = before
            for key in export.moved_to_metadata:
                if key in metadata and key not in extensions:
                    extensions[key] = metadata.pop(key)
        if metadata:
            attributes["metadata"] = DictAttr(tuple(sorted(metadata.items())))
        if extensions:
            attributes["extensions"] = DictAttr(tuple(sorted(extensions.items())))
        return Op.build("skill.meta", attributes=attributes, loc=self.loc(1, 1))

    def _resources(self) -> list[Op]:
        ops = []
        for f in self.source.files:
            stem = f.rel_path.rsplit("/", 1)[-1]
            sym = symbol_for(stem, self.symbols)
            self.resource_symbols[f.rel_path] = sym
            attributes: dict = {"sym_name": sym, "path": f.rel_path, "kind": Keyword(f.kind)}
            if f.sha256 is not None:
                attributes["sha256"] = f.sha256
            if f.size is not None:
                attributes["size"] = f.size
            if f.kind == "reference":
                attributes["lazy"] = UNIT
            if not f.available:
                attributes["missing"] = UNIT
            ops.append(Op.build("skill.resource", attributes=attributes))
        # A bare file name must stand alone; a path may follow a placeholder ("<dir>/x/y.py").
        self.mentionable = [
            (rel, "_-" if "/" in rel else "/_-") for rel in self.resource_symbols if len(rel) > 3
        ]
        # What a text without a "/" can mention: most texts have none, most paths have one.
        self.mentionable_bare = [(rel, boundary) for rel, boundary in self.mentionable if "/" not in rel]
        return ops

    # -- dependencies ---------------------------------------------------------------------
    def _require(self, req: deps.Requirement, loc: Location) -> None:
        key = (req.manager, req.package)
        if key in self.requirements:
            return
        # inline: the requirement is stated in the skill's own text (its evidence).
        attributes: dict = {"manager": Keyword(req.manager), "package": req.package, "inline": UNIT}
        if req.version:
            attributes["version"] = req.version
        if req.import_name and req.import_name != req.package:
            attributes["import_name"] = req.import_name
        if req.evidence:
            attributes["evidence"] = req.evidence[:200]
        self.requirements[key] = Op.build("env.require", attributes=attributes, loc=loc)

    def _requirement_ops(self) -> list[Op]:
        return list(self.requirements.values())

    def _collect_dependencies(self) -> None:
        local_modules = {
            f.rel_path.rsplit("/", 1)[-1].removesuffix(".py")
            for f in self.source.files
            if f.rel_path.endswith(".py")
        }
        if self.front.compatibility:
            loc = self.front.location_of("compatibility") or self.loc(1)
            for req in deps.compatibility_requirements(self.front.compatibility):
                self._require(req, loc)
        for block in _walk_blocks(self.blocks):
            if isinstance(block, CodeBlock):
                lang = (block.lang or "").lower()
                base = block.line + (1 if block.fenced else 0)
                for req in self._code_requirements(block.code, lang, is_shell_block(block), local_modules):
                    line = base + block.code.count("\n", 0, req.offset)
                    self._require(req, self.loc(line, block.col))
            elif isinstance(block, (Paragraph, ListItem)):
                text = block.text
                if "`" in text:  # inline code; most paragraphs have none
                    for m in _INLINE_CODE.finditer(text):
                        for req in deps.install_requirements(m.group(1)):
                            line = block.line + text.count("\n", 0, m.start())
                            self._require(req, self.loc(line, block.col))
                for req in deps.env_var_requirements(text):
                    line = block.line + text.count("\n", 0, req.offset)
                    self._require(req, self.loc(line, block.col))
        for f in self.source.files:
            if not f.available or not f.is_text or f.size is None or f.size > 2_000_000:
                continue
            path = self.source.root / f.rel_path
            try:
                code = path.read_text("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            lang = {".py": "python", ".js": "javascript", ".mjs": "javascript", ".ts": "typescript",
                    ".sh": "bash"}.get(path.suffix.lower())
            if lang is None:
                continue
            for req in self._code_requirements(code, lang, lang == "bash", local_modules):
                line = code.count("\n", 0, req.offset) + 1
                self._require(req, Location(f.rel_path, line, 1))

    @staticmethod
    def _code_requirements(code: str, lang: str, shell: bool, local_modules) -> list[deps.Requirement]:
        found: list[deps.Requirement] = []
        if shell:
            found += deps.install_requirements(code)
            for command in command_lines(code):
                found += deps.invoked_binaries(command)
        if lang in ("python", "py", "python3"):
            found += deps.python_imports(code, local_modules)
        if lang in ("javascript", "js", "typescript", "ts", "jsx", "tsx", "mjs"):
            found += deps.javascript_imports(code)
        found += deps.env_var_requirements(code)
        return sorted(found, key=lambda r: r.offset)

    # -- context stream -----------------------------------------------------------------
    def emit(self, op: Op) -> None:
        """Append a context op to the current stream."""
        self.stream[-1].append(op)

    def _source(self, first: int, last: int) -> str:
        text = "\n".join(self.lines[first - 1 : last])
        if text[:1] in ("", " ", "\t", "\n"):
            return textwrap.dedent(text).strip("\n")
        if "\n" not in text:
            return text  # one unindented line (most items): nothing to remove
        # An unindented first line leaves dedent nothing to remove but the
        # blanks of whitespace-only lines: skip its scan of every line's indent.
        return _WHITESPACE_ONLY_LINE.sub("", text).strip("\n")

    def _context(self) -> None:
        blocks = self.blocks
        i = 0
        section: tuple[str, int] | None = None  # (title, level)
        pending_title: Heading | None = None
        prose: list[Block] = []

        def flush() -> None:
            nonlocal pending_title
            if prose:
                self._emit_prose(prose, pending_title)
                pending_title = None
                prose.clear()

        def open_heading() -> None:
            nonlocal pending_title
            if pending_title is not None:
                self._emit_prose([], pending_title)
                pending_title = None

        while i < len(blocks):
            block = blocks[i]
            if isinstance(block, Heading):
                flush()
                open_heading()
                self._close_platform(block.level)
                if STEP_HEADING.match(block.text):
                    i = self._step_headings(i, section)
                    continue
                self._open_platform(block)
                section = (block.text, block.level)
                pending_title = block
                i += 1
                continue
            if self._is_procedure_list(block, section):
                flush()
                open_heading()
                title = section[0] if section else "Procedure"
                self._procedure_from_list(block, title)
                i += 1
                continue
            if isinstance(block, CodeBlock):
                flush()
                open_heading()
                self._emit_example(block)
                i += 1
                continue
            if isinstance(block, HtmlComment):
                flush()
                open_heading()
                self.emit(Op.build("ctx.text", attributes={"title": "", "text": block.text, "html_comment": UNIT},
                                   loc=self.loc(block.line, block.col)))
                i += 1
                continue
            prose.append(block)
            i += 1
        flush()
        open_heading()
        self._close_platform(0)

    def _open_platform(self, heading: Heading) -> None:
        for pattern, kind, value in PLATFORM_CONDITIONS:
            if pattern.match(heading.text) or heading.text.strip().lower() == value or (
                value == "macos" and heading.text.strip().lower() in ("mac", "macos", "os x")
            ):
                self.stream.append([])
                self.platform_depth.append(heading.level)
                self._platform_meta = getattr(self, "_platform_meta", [])
                self._platform_meta.append((kind, value, self.loc(heading.line, heading.col)))
                return

    def _close_platform(self, level: int) -> None:
        while self.platform_depth and self.platform_depth[-1] >= level:
            self.platform_depth.pop()
            ops = self.stream.pop()
            kind, value, loc = self._platform_meta.pop()
            self.emit(
                Op.build(
                    "env.if",
                    attributes={"kind": Keyword(kind), "value": value, "synthetic": UNIT},
                    regions=(Region(ops), Region()),
                    loc=loc,
                )
            )

    def _emit_prose(self, blocks: list[Block], heading: Heading | None) -> None:
        text = self._source(blocks[0].line, blocks[-1].end_line) if blocks else ""
        if heading is not None:
            attributes = {"title": heading.text, "text": text, "level": heading.level}
            loc = self.loc(heading.line, heading.col)
        else:
            attributes = {"title": "", "text": text}
            loc = self.loc(blocks[0].line, blocks[0].col)
        self.emit(Op.build("ctx.text", attributes=attributes, loc=loc))
        for block in blocks:
            self._rules_and_refs(block)

    def _emit_example(self, block: CodeBlock) -> None:
        attributes: dict = {"code": block.code}
        if block.lang:
            attributes["lang"] = block.lang
        if block.fenced and block.info and block.info != block.lang:
            attributes["title"] = block.info
        if not block.fenced:
            attributes["indented"] = UNIT
        self.emit(Op.build("ctx.example", attributes=attributes, loc=self.loc(block.line, block.col)))
        self._refs_in(block.code, block.line + (1 if block.fenced else 0), block.col)

    # -- rules and references ---------------------------------------------------------------
    def _rules_and_refs(self, block: Block) -> None:
        # Most blocks (paragraphs, tables, one-paragraph list items) nest
        # nothing: no walk to set up for them.
        nests = isinstance(block, (ListBlock, BlockQuote)) or (
            isinstance(block, ListItem) and block.children
        )
        for item in _walk_blocks([block]) if nests else (block,):
            if isinstance(item, (Paragraph, ListItem)):
                self._rules_in(item.text, item.line, item.col)
                self._refs_in(item.text, item.line, item.col)
            elif isinstance(item, Table):
                for row, line in zip(item.rows, item.row_lines or [item.line] * len(item.rows)):
                    text = " | ".join(row)
                    self._refs_in(text, line, item.col)
                    self._rules_in(text, line, item.col)
            elif isinstance(item, CodeBlock):
                self._refs_in(item.code, item.line, item.col)

    def _rules_in(self, text: str, line: int, col: int) -> None:
        # Where rule words may start; a sentence with none of them cannot be a rule.
        hits = _rule_word_starts(text)
        if not hits:
            return
        position = 0
        for sentence in _SENTENCE_SPLIT.split(text):
            start = text.find(sentence, position)
            position = start + len(sentence) if start >= 0 else position
            k = bisect.bisect_left(hits, start)
            if k == len(hits) or hits[k] >= start + len(sentence):
                continue
            clean = sentence.strip()
            if len(clean) < 4:
                continue
            for pattern, severity in RULE_PATTERNS:
                if pattern.search(clean):
                    at = line + (text.count("\n", 0, start) if start > 0 else 0)
                    self.emit(
                        Op.build(
                            "ctx.rule",
                            attributes={"severity": Keyword(severity), "text": clean, "inline": UNIT},
                            loc=self.loc(at, col if at == line else 1),
                        )
                    )
                    break

    def _refs_in(self, text: str, line: int, col: int) -> None:
        for rel, offset in self._mentions(text):
            at = line + text.count("\n", 0, offset)
            line_start = text.rfind("\n", 0, offset) + 1
            at_col = (col if at == line else 1) + offset - line_start
            sym = self.resource_symbols.get(rel)
            if sym is None:
                if rel not in self.warned_missing:
                    self.warned_missing.add(rel)
                    self.diag.warning(f"reference to a file the skill does not contain: '{rel}'",
                                      self.loc(at, at_col))
                continue
            if sym in self.referenced:
                continue
            self.referenced.add(sym)
            sentence = _sentence_around(text, offset)
            # inline: the mention is in the prose; back ends do not repeat it.
            attributes: dict = {"resource": SymbolRef(sym), "inline": UNIT}
            if sentence:
                attributes["when"] = sentence
            self.emit(Op.build("ctx.ref", attributes=attributes, loc=self.loc(at, col)))

    def _mentions(self, text: str) -> list[tuple[str, int]]:
        """(path, offset) of each file ``text`` mentions, first mention of each, in text order."""
        found: list[tuple[int, str]] = []
        # The substring tests skip the regex scans on the many texts without a link or a path.
        if "](" in text:
            for m in _LINK_TARGET.finditer(text):
                target = m.group(1)
                if "://" in target or target.startswith(("mailto:", "#")):
                    continue
                found.append((m.start(1), target))
        mentionable = self.mentionable_bare
        if "/" in text:
            for m in _PATH_MENTION.finditer(text):
                found.append((m.start(1), m.group(1)))
            mentionable = self.mentionable
        for rel, boundary in mentionable:
            k = text.find(rel)
            if k >= 0 and (k == 0 or not (text[k - 1].isalnum() or text[k - 1] in boundary)):
                found.append((k, rel))
        if not found:
            return []
        seen: set[str] = set()
        mentions = []
        for offset, raw in sorted(found):
            rel = _normalize_rel(raw)
            if rel is None or rel in seen:
                continue
            if rel not in self.resource_symbols and not _looks_like_file(rel):
                continue
            seen.add(rel)
            mentions.append((rel, offset))
        return mentions

    # -- procedures ------------------------------------------------------------------------------
    def _is_procedure_list(self, block: Block, section: tuple[str, int] | None) -> bool:
        if not isinstance(block, ListBlock) or len(block.items) < 2:
            return False
        if block.ordered:
            return True
        return section is not None and bool(WORKFLOW_HEADING.search(section[0]))

    def _procedure_from_list(self, block: ListBlock, title: str) -> None:
        steps = []
        for item in block.items:
            marker, text = self._item_text(item)
            if item.children:
                code = tuple(b for b in _walk_blocks(item.children) if isinstance(b, CodeBlock))
                substeps = sum(len(b.items) for b in item.children if isinstance(b, ListBlock))
            else:  # most items are one paragraph
                code, substeps = (), 0
            steps.append(StepSource(text, self.loc(item.line, item.col), code, substeps, marker))
            self._rules_and_refs(item)
        self._add_procedure(title, self.loc(block.line, block.col), steps)

    def _item_text(self, item: ListItem) -> tuple[str, str]:
        """(marker, text) of a list item: its source with the marker (and checkbox) split off."""
        raw = self._source(item.line, item.end_line)
        m = _ITEM_MARKER.match(raw)
        prefix = m.group(0) if m else ""
        # The list's own indentation is not part of the marker (lists render at column 1).
        return prefix.lstrip(), raw[len(prefix):].strip()

    def _step_headings(self, i: int, section: tuple[str, int] | None) -> int:
        """Collect consecutive "Step N" sections from block ``i``; return the next index."""
        blocks = self.blocks
        first = blocks[i]
        assert isinstance(first, Heading)
        level = first.level
        steps = []
        while i < len(blocks) and isinstance(blocks[i], Heading) and blocks[i].level == level \
                and STEP_HEADING.match(blocks[i].text):
            heading = blocks[i]
            j = i + 1
            while j < len(blocks) and not (isinstance(blocks[j], Heading) and blocks[j].level <= level):
                j += 1
            body = blocks[i + 1 : j]
            end = body[-1].end_line if body else heading.end_line
            text = self._source(heading.line, end)
            m = _HEADING_MARKER.match(text)
            marker = m.group(0) if m else ""
            text = text[len(marker):]
            code = tuple(b for b in _walk_blocks(body) if isinstance(b, CodeBlock))
            substeps = sum(len(b.items) for b in body if isinstance(b, ListBlock))
            steps.append(StepSource(text, self.loc(heading.line, heading.col), code, substeps, marker))
            for b in body:
                self._rules_and_refs(b)
            i = j
        title = section[0] if section else "Steps"
        self._add_procedure(title, steps[0].loc, steps)
        return i

    def _add_procedure(self, title: str, loc: Location, steps: list[StepSource]) -> None:
        symbol = symbol_for(title, self.symbols, "")
        procedure = Procedure(title, loc, tuple(steps), symbol)
        self.procedures.append(procedure)
        self.emit(Op.build("ctx.ref", attributes={"resource": SymbolRef(symbol)}, loc=loc))

    def _procs(self) -> list[Op]:
        builder = _ProcBuilder(self)
        if len(self.procedures) == 1:
            only = self.procedures[0]
            # The single procedure is main: re-point its anchor.
            self._rename_anchor(only.symbol, "main")
            self.symbols.discard(only.symbol)
            return [builder.procedure(attrs.evolve(only, symbol="main"))]
        procs = [builder.procedure(p) for p in self.procedures]
        main = builder.dispatcher(self.procedures) if self.procedures else builder.guidance_only()
        return [main, *procs]

    def _rename_anchor(self, old: str, new: str) -> None:
        def rename(ops: list[Op]) -> list[Op]:
            out = []
            for op in ops:
                if op.name == "ctx.ref" and op.attr("resource") == SymbolRef(old):
                    op = op.with_attrs(resource=SymbolRef(new))
                if op.regions:
                    op = op.with_regions([r.with_ops(rename(list(r.ops))) for r in op.regions])
                out.append(op)
            return out

        self.stream[0] = rename(self.stream[0])


def _rule_word_starts(text: str) -> list[int]:
    """Sorted offsets in ``text`` where a rule word may start (every one does start there)."""
    # Without CASE_FOLD_TRAPS, a rule word's lowercase form is in the lowercase
    # text, at its offset.
    if not text.isascii() and any(c in text for c in CASE_FOLD_TRAPS):
        return [m.start() for m in _ANY_RULE_WORD.finditer(text)]
    # Substring searches of the lowercase text find the candidates faster than the regex.
    low = text.lower()
    starts = []
    for word in _RULE_WORD_STARTS:
        at = low.find(word)
        while at >= 0:
            starts.append(at)
            at = low.find(word, at + 1)
    starts.sort()
    return starts


def _sentence_around(text: str, offset: int) -> str:
    start = max(text.rfind(". ", 0, offset), text.rfind("\n", 0, offset))
    end_candidates = [k for k in (text.find(". ", offset), text.find("\n", offset)) if k >= 0]
    end = min(end_candidates) if end_candidates else len(text)
    return text[start + 1 : end + 1].strip()[:300]


def _normalize_rel(raw: str) -> str | None:
    rel = raw.strip().strip("`'\"").removeprefix("./")
    if not rel or rel.startswith(("/", "~", "$", "<", "{")) or ".." in rel.split("/"):
        return None
    rel = rel.rstrip(".,;:)")
    return rel or None


def _looks_like_file(rel: str) -> bool:
    last = rel.rsplit("/", 1)[-1]
    return "." in last and not last.endswith(".") and len(last.rsplit(".", 1)[1]) <= 5


def _walk_blocks(blocks: Sequence[Block]) -> Iterator[Block | ListItem]:
    """Every block and list item, depth first in source order."""
    # An explicit stack: nested generators would cost a frame per level per block.
    stack: list = list(reversed(blocks))
    while stack:
        block = stack.pop()
        yield block
        if isinstance(block, ListBlock):
            stack.extend(reversed(block.items))
        elif isinstance(block, ListItem):
            stack.extend(reversed(block.children))
        elif isinstance(block, BlockQuote):
            stack.extend(reversed(block.blocks))


class _ProcBuilder:
    """Turns procedures into ``skill.proc`` ops."""

    def __init__(self, lowering: Lowering):
        self.lw = lowering
        self.result_types: dict[str, T.Type] = {}

    # -- procs ---------------------------------------------------------------------------
    def procedure(self, procedure: Procedure) -> Op:
        """A proc whose body runs the procedure's steps in order."""
        self.names: set[str] = {"task"}
        ops: list[Op] = []
        prev: str | None = None
        steps = list(procedure.steps)
        k = 0
        while k < len(steps):
            step = steps[k]
            otherwise = None
            if k + 1 < len(steps) and _OTHERWISE.match(steps[k + 1].text):
                otherwise = steps[k + 1]
            new_ops, value, consumed_else = self.step(step, k + 1, prev, otherwise)
            ops.extend(new_ops)
            prev = value or prev
            k += 2 if consumed_else else 1
        ops.append(Op.build("ctl.return", operands=(prev or "task",)))
        result_type = self._type_of(ops, prev)
        self.result_types[procedure.symbol] = result_type
        return self._proc(procedure.symbol, ops, procedure.loc, procedure.title, result_type)

    @staticmethod
    def _type_of(ops: list[Op], name: str | None) -> T.Type:
        for op in ops:
            for value in op.results:
                if value.name == name:
                    return value.type
        return T.TEXT

    def dispatcher(self, procedures: list[Procedure]) -> Op:
        """``main`` for a skill with several procedures: pick by the task, call.

        Every question is asked before any procedure runs: the questions
        depend only on the task, so ``parallelize`` can ask them at once.
        """
        self.names = {"task"}
        ops: list[Op] = []
        for n, procedure in enumerate(procedures, 1):
            ops.append(Op.build(
                "llm.judge",
                operands=("task",),
                results=(Value(f"use{n}", T.BOOL),),
                attributes={"question": f"Does the task call for the procedure '{procedure.title}'?",
                            "caps": _JUDGE_CAPS, "tools": ()},
                loc=procedure.loc,
            ))
        prev = "task"
        prev_type = T.TEXT
        for n, procedure in enumerate(procedures, 1):
            called = f"ran{n}"
            result = f"r{n}"
            called_type = self.result_types.get(procedure.symbol, T.TEXT)
            result_type = T.TEXT if called_type == T.TEXT and prev_type == T.TEXT else T.ANY
            then = Region((
                Op.build("ctl.call", operands=("task",), results=(Value(called, called_type),),
                         attributes={"callee": SymbolRef(procedure.symbol)}, loc=procedure.loc),
                Op.build("ctl.yield", operands=(called,)),
            ))
            other = Region((Op.build("ctl.yield", operands=(prev,)),))
            ops.append(Op.build("ctl.if", operands=(f"use{n}",), results=(Value(result, result_type),),
                                regions=(then, other), loc=procedure.loc))
            prev = result
            prev_type = result_type
        ops.append(Op.build("ctl.return", operands=(prev,)))
        return self._proc("main", ops, self.lw.loc(1), None, synthetic=True)

    def guidance_only(self) -> Op:
        """``main`` for a skill that is all guidance: one step does the task."""
        body = self.lw.front.body
        findings = step_capabilities(body[:_PROMPT_TEXT_LIMIT])
        step = Op.build(
            "llm.step",
            operands=("task",),
            results=(Value("result", T.TEXT),),
            attributes={
                "prompt": "Complete the user's task following the skill's guidance.",
                "synthetic": UNIT,
                **_caps_attrs(findings),
            },
            loc=self.lw.loc(self.lw.front.body_start_line),
        )
        ops = [step, Op.build("ctl.return", operands=("result",))]
        return self._proc("main", ops, self.lw.loc(1), None, synthetic=True)

    def _proc(self, symbol: str, ops: list[Op], loc: Location, title: str | None,
              result_type: T.Type = T.TEXT, synthetic: bool = False) -> Op:
        attributes: dict = {"sym_name": symbol, "result_types": (TypeAttr(result_type),)}
        if title is not None:
            attributes["section"] = title
        if synthetic:  # implied by the skill's layout, not written in it
            attributes["synthetic"] = UNIT
        return Op.build(
            "skill.proc",
            attributes=attributes,
            regions=(Region(ops, (Value("task", T.TEXT),)),),
            loc=loc,
        )

    def fresh(self, base: str) -> str:
        """A value name unique in the procedure."""
        name = base
        n = 2
        while name in self.names:
            name = f"{base}_{n}"
            n += 1
        self.names.add(name)
        return name

    # -- steps ---------------------------------------------------------------------------
    def step(self, step: StepSource, n: int, prev: str | None, otherwise: StepSource | None):
        """Lower one step; return (ops, result value name or None, consumed the otherwise step)."""
        first_line = step.text.split("\n", 1)[0]
        inputs = ("task",) + ((prev,) if prev and prev != "task" else ())
        # Platform or tool-presence condition -> env.if.
        if _PLATFORM_OPENING.match(first_line):
            for pattern, kind, value in PLATFORM_CONDITIONS:
                if pattern.match(first_line):
                    return [self._env_if(step, n, kind, value, False, inputs)], None, False
        missing = _TOOL_MISSING.match(first_line)
        if missing:
            negate = bool(missing.group("neg")) or "missing" in missing.group(0).lower()
            return [self._env_if(step, n, "bin", missing.group("bin"), negate, inputs)], None, False
        # Model-decided condition -> llm.judge + ctl.if.
        cond = _CONDITION.match(step.text)
        if cond and len(cond.group("cond")) < 160:
            return self._if(step, n, cond.group("cond").strip(), inputs, prev, otherwise)
        if _LOOP.search(first_line):
            return self._loop(step, n, inputs)
        commands = self._commands(step)
        if commands and self._command_step(step, commands):
            ops = self._tool_ops(step, n, commands)
            return ops, ops[-1].results[0].name, False
        op = self._llm_step(step, n, inputs, commands)
        return [op], op.results[0].name, False

    def _llm_step(self, step: StepSource, n: int, inputs, commands, name: str | None = None) -> Op:
        code = [b.code for b in step.code]
        findings = step_capabilities(step.text[:_PROMPT_TEXT_LIMIT], code, step.substeps)
        attributes: dict = {"prompt": step.text, "marker": step.marker, **_caps_attrs(findings)}
        if commands:
            attributes["commands"] = tuple(commands)
        script = self._script_in(step.text)
        if script is not None:
            attributes["script"] = SymbolRef(script)
        result = self.fresh(name or f"s{n}")
        return Op.build("llm.step", operands=inputs, results=(Value(result, T.TEXT),),
                        attributes=attributes, loc=step.loc)

    def _commands(self, step: StepSource) -> list[str]:
        commands: list[str] = []
        for block in step.code:
            if is_shell_block(block):
                commands.extend(command_lines(block.code))
        first_paragraph = step.text.split("\n\n", 1)[0]
        for m in _INLINE_CODE.finditer(first_paragraph):
            candidate = m.group(1).strip()
            if _COMMAND_WORD.match(candidate) and " " in candidate:
                commands.append(candidate.removeprefix("$ "))
        return commands

    def _command_step(self, step: StepSource, commands: list[str]) -> bool:
        """A step is just commands when they are concrete and the prose is a short lead-in."""
        if not all(is_concrete(c) for c in commands):
            return False
        if not any(is_shell_block(b) for b in step.code):
            prose = _INLINE_CODE.sub("", step.text).strip(" .:\n")
            return "\n" not in prose and len(prose.split()) <= 8
        prose = step.text
        for block in step.code:
            prose = prose.replace(block.code, "")
        prose = _FENCE_LINE.sub("", prose)
        return len(prose.split()) <= 12

    def _tool_ops(self, step: StepSource, n: int, commands: list[str]) -> list[Op]:
        ops = []
        for k, command in enumerate(commands):
            result = self.fresh(f"s{n}" if len(commands) == 1 else f"s{n}_{k + 1}")
            # The first op carries the step's text; the step's other commands are synthetic.
            attributes: dict = {"origin": step.text, "marker": step.marker} if k == 0 else {"synthetic": UNIT}
            shell = needs_shell(command)
            script = None if shell else self._script_invocation(command)
            if script is not None:
                sym, args = script
                attributes.update({"script": SymbolRef(sym), "args": tuple(args)})
                ops.append(Op.build("tool.script", results=(Value(result, T.TEXT),),
                                    attributes=attributes, loc=step.loc))
                continue
            if shell:
                attributes.update({"argv": (command,), "shell": UNIT})
            else:
                try:
                    attributes["argv"] = tuple(split_words(command))
                except ValueError:
                    attributes.update({"argv": (command,), "shell": UNIT})
            ops.append(Op.build("tool.exec", results=(Value(result, T.TEXT),),
                                attributes=attributes, loc=step.loc))
        return ops

    def _script_invocation(self, command: str) -> tuple[str, list[str]] | None:
        try:
            words = split_words(command)
        except ValueError:
            return None
        if words and words[0] in ("uv", "uvx") and len(words) > 2 and words[1] == "run":
            words = words[1:]
            words[0] = "python"
        if len(words) >= 2 and words[0] in _SCRIPT_INTERPRETERS:
            rel = _normalize_rel(words[1])
            if rel is not None and rel in self.lw.resource_symbols:
                kind = next((f.kind for f in self.lw.source.files if f.rel_path == rel), None)
                if kind == "script":
                    return self.lw.resource_symbols[rel], words[2:]
        return None

    def _script_in(self, text: str) -> str | None:
        for rel, sym in self.lw.resource_symbols.items():
            if rel in text:
                kind = next((f.kind for f in self.lw.source.files if f.rel_path == rel), None)
                if kind == "script":
                    return sym
        return None

    def _if(self, step, n, condition, inputs, prev, otherwise):
        cond = self.fresh(f"c{n}")
        judge = Op.build(
            "llm.judge", operands=inputs, results=(Value(cond, T.BOOL),),
            attributes={"question": condition, "caps": _JUDGE_CAPS, "tools": (), "synthetic": UNIT},
            loc=step.loc,
        )
        then_step = self._llm_step(step, n, inputs, self._commands(step), name=f"s{n}_then")
        then_region = Region((then_step, Op.build("ctl.yield", operands=(then_step.results[0].name,))))
        fallback = prev or "task"
        if otherwise is not None:
            else_step = self._llm_step(otherwise, n + 1, inputs, self._commands(otherwise), name=f"s{n}_else")
            else_region = Region((else_step, Op.build("ctl.yield", operands=(else_step.results[0].name,))))
        else:
            else_region = Region((Op.build("ctl.yield", operands=(fallback,)),))
        result = self.fresh(f"s{n}")
        branch = Op.build("ctl.if", operands=(cond,), results=(Value(result, T.TEXT),),
                          regions=(then_region, else_region), attributes={"condition": condition, "synthetic": UNIT},
                          loc=step.loc)
        return [judge, branch], result, otherwise is not None

    def _env_if(self, step, n, kind, value, negate, inputs) -> Op:
        inner = self._llm_step(step, n, inputs, self._commands(step))
        attributes: dict = {"kind": Keyword(kind), "value": value, "synthetic": UNIT}
        if negate:
            attributes["negate"] = UNIT
        return Op.build("env.if", attributes=attributes, regions=(Region((inner,)), Region()), loc=step.loc)

    def _loop(self, step, n, inputs):
        items = self.fresh(f"items{n}")
        item = self.fresh(f"item{n}")
        listing = Op.build(
            "llm.gen", operands=inputs, results=(Value(items, T.list_of(T.TEXT)),),
            attributes={
                "prompt": "List, as a JSON array of strings, every item this step must be done for: "
                + step.text.split("\n", 1)[0],
                "caps": _LISTING_CAPS,
                "synthetic": UNIT,
            },
            loc=step.loc,
        )
        body_step = self._llm_step(step, n, (item,) + tuple(inputs), self._commands(step), name=f"s{n}_each")
        body = Region(
            (body_step, Op.build("ctl.yield", operands=(body_step.results[0].name,))),
            (Value(item, T.TEXT),),
        )
        result = self.fresh(f"s{n}")
        loop = Op.build("ctl.for_each", operands=(items,), results=(Value(result, T.list_of(T.TEXT)),),
                        regions=(body,), attributes={"synthetic": UNIT}, loc=step.loc)
        return [listing, loop], result, False


def _caps_attrs(findings) -> dict:
    if not findings:
        return {}
    return {
        "caps": tuple(f.cap for f in findings),
        "evidence": DictAttr(tuple(sorted((str(f.cap), f.evidence) for f in findings))),
    }
