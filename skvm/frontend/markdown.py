"""Total block-level Markdown parser for SKILL.md bodies.

Two stages, per container level:

1. A stateful line classifier turns every line into one character, its *line
   kind* (:data:`LINE_KINDS`): heading, fence, list item, continuation of the
   open list item, table row, quote, comment, blank, text... It keeps the
   context Markdown needs (open fences and comments, the open list item's
   indentation, lazy paragraph continuation) and looks ahead one line for
   table delimiters and past blank lines for list and indented-code
   continuation.
2. The LALR grammar in ``skvm/grammar/skill.lark`` (built once, lazily) parses
   that string of kinds (tokenised by one regex over the grammar's terminals)
   and groups lines into blocks. List items and block quotes are containers: their lines are
   dedented and parsed again one level deeper (at most :data:`MAX_DEPTH`
   levels; deeper content stays prose), so the cost is linear in the input.
   A container holding one line of plain text (most list items) is built as
   its paragraph directly.

The classifier only emits kind sequences the grammar accepts, so any text
parses; anything unknown is a paragraph. Where CommonMark and what skill
authors mean disagree, the parser follows the authors (documented at the
rule): a line indented past its list marker belongs to the item even when it
is short of the content column; a fence opened inside a list item runs until
its closing fence whatever that fence's indentation; list items may interrupt
a paragraph whatever their number.

Every block records ``line``/``col`` (1-based, in SKILL.md coordinates when
``first_line`` is the body's first line) and ``end_line``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import attrs
import lark

from skvm.diagnostics import Location, SkvmError
from skvm.lalr import LalrDriver

# Container nesting (lists in lists, quotes in quotes) deeper than this is
# kept as prose: it bounds both the work (linear with a fixed factor) and the
# recursion of the builder.
MAX_DEPTH = 16

# One character per classified line; the grammar's terminals use the same
# characters.
LINE_KINDS: dict[str, str] = {
    "b": "blank line between blocks",
    "t": "paragraph text",
    "u": "setext heading underline",
    "h": "ATX heading",
    "f": "opening code fence",
    "c": "line inside a fenced code block",
    "F": "closing code fence",
    "i": "indented code line",
    "j": "blank line inside indented code",
    "L": "first item of a list",
    "I": "next item of the same list",
    "n": "continuation line of the open list item",
    "T": "table header row",
    "d": "table delimiter row",
    "r": "table body row",
    ">": "block quote line (or its lazy continuation)",
    "C": "one-line HTML comment",
    "o": "HTML comment start",
    "m": "line inside an HTML comment",
    "e": "HTML comment end",
    "H": "HTML block start",
    "l": "HTML block line",
    "R": "thematic break",
}


# -- document model ----------------------------------------------------------


@attrs.frozen
class Heading:
    """An ATX (``# x``) or setext (``x`` over ``===``) heading."""

    level: int
    text: str
    line: int
    col: int
    end_line: int


@attrs.frozen
class Paragraph:
    """Prose: consecutive text lines, leading indentation removed."""

    text: str
    line: int
    col: int
    end_line: int


@attrs.frozen
class CodeBlock:
    """A fenced (```` ``` ```` / ``~~~``) or indented code block."""

    lang: str | None
    code: str
    fenced: bool
    info: str
    line: int
    col: int
    end_line: int
    # False for a fence that runs to the end of its container unclosed.
    closed: bool = True


@attrs.frozen
class ListItem:
    """One list item: its leading paragraph as ``text``, other blocks as children."""

    number: int | None
    text: str
    children: tuple[Block, ...]
    line: int
    col: int
    end_line: int
    # Task-list items (``- [ ] x`` / ``- [x] x``); None for plain items.
    checked: bool | None = None


@attrs.frozen
class ListBlock:
    """An ordered or unordered list; ``marker`` is ``-*+`` or ``.``/``)``."""

    ordered: bool
    items: tuple[ListItem, ...]
    line: int
    col: int
    end_line: int
    marker: str = "-"
    start: int | None = None


@attrs.frozen
class Table:
    """A GFM pipe table (cells unescaped and stripped, rows as written)."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    line: int
    col: int
    end_line: int
    # Per column: "left", "right", "center" or None, from the delimiter row.
    align: tuple[str | None, ...] = ()
    row_lines: tuple[int, ...] = ()


@attrs.frozen
class BlockQuote:
    """A ``>`` block quote and the blocks inside it."""

    blocks: tuple[Block, ...]
    line: int
    col: int
    end_line: int


@attrs.frozen
class HtmlComment:
    """An HTML comment block; ``text`` is what lies between ``<!--`` and ``-->``."""

    text: str
    line: int
    col: int
    end_line: int


@attrs.frozen
class HtmlBlock:
    """Raw HTML lines (a block-level tag up to the next blank line)."""

    text: str
    line: int
    col: int
    end_line: int


@attrs.frozen
class ThematicBreak:
    """A horizontal rule (``---``, ``***``, ``___``)."""

    line: int
    col: int
    end_line: int


Block = (
    Heading
    | Paragraph
    | CodeBlock
    | ListBlock
    | Table
    | BlockQuote
    | HtmlComment
    | HtmlBlock
    | ThematicBreak
)


@attrs.frozen
class Section:
    """Blocks grouped under a heading; ``heading`` is None for the root."""

    heading: Heading | None
    level: int
    blocks: tuple[Block, ...]
    children: tuple[Section, ...]


# -- line classification -----------------------------------------------------

_ATX = re.compile(r"(#{1,6})(?=[ \t]|$)(.*)$")
_ATX_CLOSE = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")
_FENCE = re.compile(r"(`{3,}|~{3,})(.*)$")
_THEMATIC = re.compile(r"([-*_])[ \t]*(?:\1[ \t]*){2,}$")
_SETEXT = re.compile(r"(?:=+|-+)[ \t]*$")
_BULLET = re.compile(r"([-*+])([ \t]+|$)")
_ORDERED = re.compile(r"(\d{1,9})([.)])([ \t]+|$)")
_TASK = re.compile(r"\[([ xX])\](?:[ \t]+|$)")
_TABLE_DELIM = re.compile(r"[ \t]{0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_HTML_RAW = re.compile(r"<(script|pre|style|textarea)(?:[ \t>]|$)", re.IGNORECASE)
_HTML_TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9-]*)(?:[ \t]|/?>|$)")
_HTML_LONE_TAG = re.compile(
    r"(?:<[A-Za-z][A-Za-z0-9-]*(?:[ \t]+[A-Za-z_:][^<>]*)?[ \t]*/?>|</[A-Za-z][A-Za-z0-9-]*[ \t]*>)[ \t]*$"
)
# CommonMark's HTML block type 6: these tags start a block even mid-paragraph.
_HTML_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "base",
        "basefont",
        "blockquote",
        "body",
        "caption",
        "center",
        "col",
        "colgroup",
        "dd",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "frame",
        "frameset",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "header",
        "hr",
        "html",
        "iframe",
        "legend",
        "li",
        "link",
        "main",
        "menu",
        "menuitem",
        "nav",
        "noframes",
        "ol",
        "optgroup",
        "option",
        "p",
        "param",
        "search",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "title",
        "tr",
        "track",
        "ul",
    ]
)


def _indent(s: str) -> tuple[int, int]:
    """Visual columns (tab stops of 4) and characters of leading whitespace."""
    if not s or s[0] not in " \t":
        return 0, 0  # most lines
    cols = 0
    for i, ch in enumerate(s):
        if ch == " ":
            cols += 1
        elif ch == "\t":
            cols += 4 - cols % 4
        else:
            return cols, i
    return cols, len(s)


def _dedent(s: str, n: int) -> tuple[str, int]:
    """Remove ``n`` visual columns of indentation; return rest and chars used."""
    cols = 0
    for i, ch in enumerate(s):
        if cols >= n:
            return s[i:], i
        if ch == " ":
            cols += 1
        elif ch == "\t":
            width = 4 - cols % 4
            if cols + width > n:
                # A tab straddling the cut: keep its remainder as spaces.
                return " " * (cols + width - n) + s[i + 1 :], i
            cols += width
        else:
            return s[i:], i
    return "", len(s)


def _list_marker(st: str) -> tuple[str, int | None, int, str] | None:
    """Parse a list marker at the start of ``st`` (already unindented).

    Returns (key, number, marker width, whitespace after it) or None. The key
    groups items into one list: ``-``, ``*``, ``+``, ``.`` or ``)``.
    """
    m = _BULLET.match(st)
    if m:
        return m.group(1), None, 1, m.group(2)
    m = _ORDERED.match(st)
    if m:
        return m.group(2), int(m.group(1)), len(m.group(1)) + 1, m.group(3)
    return None


def _split_cells(row: str) -> list[str]:
    """Split a pipe-table row into stripped, unescaped cells."""
    s = row.strip()
    s = s.removeprefix("|")
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    return [c.strip().replace("\\|", "|") for c in _CELL_SPLIT.split(s)]


def _starts_block(st: str, para: bool) -> bool:
    """Whether unindented ``st`` starts a block other than paragraph text."""
    if not st:
        return True
    first = st[0]
    if first == "#":
        return _ATX.match(st) is not None
    if first in "`~":
        return _fence_open(st) is not None
    if first == ">":
        return True
    if first == "<":
        return st.startswith("<!--") or _html_start(st, para) is not None
    if first in "-*_+=" or first.isdigit():
        if _THEMATIC.match(st) or (para and first in "=-" and _SETEXT.match(st)):
            return True
        marker = _list_marker(st)
        return marker is not None and (st[marker[2] :].strip() != "" or not para)
    return False


def _fence_open(st: str) -> tuple[str, int, str] | None:
    """Parse an opening fence: (char, length, info string) or None."""
    m = _FENCE.match(st)
    if m is None:
        return None
    fence, info = m.group(1), m.group(2)
    if fence[0] == "`" and "`" in info:
        return None
    return fence[0], len(fence), info.strip()


def _closes_fence(s: str, char: str, length: int) -> bool:
    """Whether line ``s`` closes a fence of ``length`` ``char``s."""
    ind, nch = _indent(s)
    if ind > 3:
        return False
    st = s[nch:].rstrip(" \t")
    return len(st) >= length and st.count(char) == len(st)


def _html_start(st: str, para: bool) -> str | None:
    """If ``st`` starts an HTML block, the text that ends it ('' = blank line)."""
    m = _HTML_RAW.match(st)
    if m:
        end = "</" + m.group(1).lower() + ">"
        return None if end in st.lower() else end
    m = _HTML_TAG.match(st)
    if m and m.group(1).lower() in _HTML_BLOCK_TAGS:
        return ""
    if not para and _HTML_LONE_TAG.match(st):
        return ""
    return None


class _Item:
    """The open list item while classifying one level."""

    __slots__ = ("content", "fence", "key", "last_para", "marker")

    def __init__(self, marker: int, content: int, key: str) -> None:
        self.marker = marker
        self.content = content
        self.key = key
        self.fence: tuple[str, int] | None = None
        self.last_para = False

    def see(self, text: str) -> None:
        """Track the fence state and lazy-continuation state of item content."""
        ind, nch = _indent(text)
        st = text[nch:]
        if self.fence is not None:
            if _closes_fence(text, *self.fence):
                self.fence = None
            self.last_para = False
            return
        if ind <= 3:
            fence = _fence_open(st)
            if fence is not None:
                self.fence = (fence[0], fence[1])
                self.last_para = False
                return
        if ind >= 4:
            # Indented text continues a paragraph but cannot start one.
            self.last_para = self.last_para and bool(st.strip())
        else:
            self.last_para = bool(st.strip()) and not _starts_block(st, self.last_para)


class _Classifier:
    """Classifies the lines of one container level into line kinds."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.blank = [not t.strip(" \t") for t in texts]
        self._next_nonblank: list[int] | None = None
        self.kinds: list[str] = []
        # Per line: what the builder needs (varies by kind, see _emit calls).
        self.info: list[object] = []

    def next_nonblank(self, k: int) -> int:
        """The index of the first non-blank line after line ``k`` (or the line count)."""
        if self._next_nonblank is None:
            # Built on first use: most levels (one-line list items) never ask.
            n = len(self.texts)
            table = [n] * n
            nxt = n
            for j in range(n - 1, -1, -1):
                table[j] = nxt
                if not self.blank[j]:
                    nxt = j
            self._next_nonblank = table
        return self._next_nonblank[k]

    def _emit(self, kind: str, info: object = None) -> None:
        self.kinds.append(kind)
        self.info.append(info)

    def _open_item(self, s: str, nch: int, ind: int, marker) -> _Item:
        """Emit a list-item line and return the new open item."""
        key, number, width, ws = marker
        rest_start = nch + width + len(ws)
        content_text = s[rest_start:]
        spaces = len(ws.expandtabs(4)) if ws else 0
        if not content_text.strip() or spaces > 4:
            # Empty item or indented code after the marker: content starts one
            # column after the marker (CommonMark).
            content_col = ind + width + 1
            if spaces > 4:
                content_text = " " * (spaces - 1) + content_text
                rest_start = nch + width + 1
        else:
            content_col = ind + width + spaces
        item = _Item(ind, content_col, key)
        item.see(content_text)
        self._emit("L", (key, number, content_text, rest_start, nch))
        return item

    def run(self) -> tuple[str, list[object]]:
        """Classify every line; return the kinds string and per-line info."""
        texts, blank = self.texts, self.blank
        n = len(texts)
        fence: tuple[str, int, int] | None = None
        comment = False
        html_end: str | None = None
        para = icode = table = quote_para = expect_delim = False
        item: _Item | None = None
        for k in range(n):
            s = texts[k]
            if fence is not None:
                if _closes_fence(s, fence[0], fence[1]):
                    self._emit("F")
                    fence = None
                else:
                    self._emit("c", _dedent(s, fence[2])[0])
                continue
            if comment:
                self._emit("e" if "-->" in s else "m")
                comment = "-->" not in s
                continue
            if html_end is not None:
                if html_end == "":
                    if not blank[k]:
                        self._emit("l")
                        continue
                    html_end = None
                else:
                    self._emit("l")
                    if html_end in s.lower():
                        html_end = None
                    continue
            if expect_delim:
                self._emit("d")
                expect_delim, table = False, True
                continue
            ind, nch = _indent(s)
            if item is not None:
                if self._item_line(k, s, ind, nch, item):
                    if self.kinds[-1] in "LI":
                        # A new sibling item or a new list replaced the item.
                        item = self._last_item
                    continue
                item = None
                para = quote_para = table = False
            if blank[k]:
                para = table = quote_para = False
                if icode:
                    j = self.next_nonblank(k)
                    if j < n and _indent(texts[j])[0] >= 4:
                        self._emit("j")
                        continue
                    icode = False
                self._emit("b")
                continue
            if ind >= 4:
                if para:
                    self._emit("t")
                elif quote_para:
                    self._emit(">", (s.lstrip(" \t"), nch, True))
                elif table:
                    self._emit("r")
                else:
                    self._emit("i", _dedent(s, 4))
                    icode = True
                continue
            icode = False
            st = s[nch:]
            first = st[0]
            kind = None
            if first == "#" and _ATX.match(st):
                kind = "h"
            elif first in "`~":
                opened = _fence_open(st)
                if opened is not None:
                    fence = (opened[0], opened[1], ind)
                    self._emit("f", opened)
                    para = quote_para = table = False
                    continue
            elif first == "<":
                if st.startswith("<!--"):
                    comment = "-->" not in st[4:]
                    kind = "o" if comment else "C"
                else:
                    end = _html_start(st, para)
                    if end is not None or _HTML_RAW.match(st):
                        html_end = end
                        kind = "H"
            elif first == ">":
                body = st[1:]
                if body[:1] in (" ", "\t"):
                    body = body[1:]
                    used = nch + 2
                else:
                    used = nch + 1
                self._emit(">", (body, used, False))
                quote_para = bool(body.strip()) and not _starts_block(
                    body.lstrip(" \t"), quote_para
                )
                para = table = False
                continue
            if kind is None and (first in "-*_+=" or first.isdigit()):
                if para and first in "=-" and _SETEXT.match(st):
                    kind = "u"
                elif first in "-*_" and _THEMATIC.match(st):
                    kind = "R"
                else:
                    marker = _list_marker(st)
                    # An empty item cannot interrupt a paragraph (CommonMark).
                    if marker is not None and not (para and not st[marker[2] :].strip()):
                        item = self._open_item(s, nch, ind, marker)
                        self._last_item = item
                        para = quote_para = table = False
                        continue
            cells = None
            if kind is None and "|" in st and k + 1 < n and not table:
                nxt = texts[k + 1]
                if "|" in nxt and _TABLE_DELIM.match(nxt):
                    header, delimiter = _split_cells(st), _split_cells(nxt)
                    # GFM: the delimiter row has as many cells as the header.
                    if len(header) == len(delimiter):
                        kind = "T"
                        expect_delim = True
                        cells = (header, delimiter)  # the builder's too: split once
            if kind is None:
                if quote_para:
                    self._emit(">", (st, nch, True))
                    continue
                kind = "r" if table else "t"
            self._emit(kind, cells)
            para = kind == "t"
            table = kind in "Tr"
            quote_para = False
        return "".join(self.kinds), self.info

    def _item_line(self, k: int, s: str, ind: int, nch: int, item: _Item) -> bool:
        """Classify line ``k`` against the open list item; False closes the item."""
        if item.fence is not None:
            rest, used = _dedent(s, min(ind, item.content))
            item.see(rest)
            self._emit("n", (rest, used))
            return True
        if self.blank[k]:
            j = self.next_nonblank(k)
            if j < len(self.texts):
                nxt = self.texts[j]
                nind, nnch = _indent(nxt)
                # Blank lines stay in the item when more of it (or a sibling
                # item) follows; trailing ones are dropped by the builder.
                if nind > item.marker or (
                    _list_marker(nxt[nnch:]) and not _THEMATIC.match(nxt[nnch:])
                ):
                    self._emit("n", ("", len(s)))
                    item.last_para = False
                    return True
            return False
        if ind > item.marker:
            # Lenient: past the marker is enough (authors indent 2 under "1.").
            rest, used = _dedent(s, min(ind, item.content))
            item.see(rest)
            self._emit("n", (rest, used))
            return True
        st = s[nch:]
        marker = _list_marker(st)
        if marker is not None and not _THEMATIC.match(st):
            new = self._open_item(s, nch, ind, marker)
            if marker[0] == item.key:
                self.kinds[-1] = "I"
            self._last_item = new
            return True
        if item.last_para and not _starts_block(st, True) and "|" not in st[:1]:
            # Lazy continuation of the item's paragraph.
            self._emit("n", (st, nch))
            return True
        return False


# -- grammar -----------------------------------------------------------------

_PARSER: lark.Lark | None = None


def _parser() -> lark.Lark:
    """The Lark LALR parser over line kinds, built once on first use."""
    global _PARSER
    if _PARSER is None:
        from importlib import resources

        grammar = resources.files("skvm").joinpath("grammar/skill.lark").read_text("utf-8")
        _PARSER = lark.Lark(grammar, parser="lalr", lexer="basic", start="start")
    return _PARSER


@functools.lru_cache(maxsize=1)
def _driver() -> LalrDriver:
    """The specialised LALR loop over the kinds grammar's table (same trees as Lark's)."""
    return LalrDriver(_parser())


@functools.lru_cache(maxsize=1)
def _kinds_scanner() -> tuple[re.Pattern, frozenset[str]]:
    """The terminals as one regex (a named group each, in Lark's order), and the ignored ones."""
    lexer = _driver().lexer
    pattern = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in lexer.terminals)
    return re.compile(pattern), lexer.ignore_types


class _Run(str):
    """A token of a kinds string: a run of lines of one kind, its terminal and offset.

    Not a ``lark.Token``: creating one of those costs twice as much (it fills
    in line and column bookkeeping), and a large document has a token per
    block. The parser reads ``type``; the builders read ``start_pos`` and the
    length.
    """

    __slots__ = ("start_pos", "type")


def _kind_tokens(kinds: str) -> Iterator[_Run]:
    """The tokens of ``kinds`` (the terminals Lark's lexer would find), then ``$END``.

    One ``finditer`` instead of Lark's general lexer loop.
    """
    scanner, ignored = _kinds_scanner()
    end = 0
    for m in scanner.finditer(kinds):
        if m.start() != end:  # pragma: no cover - classifier bug
            raise lark.exceptions.UnexpectedCharacters(kinds, end, 1, end + 1)
        start, end = end, m.end()
        if m.lastgroup in ignored:
            continue
        token = _Run(m.group())
        token.type = m.lastgroup
        token.start_pos = start
        yield token
    if end != len(kinds):  # pragma: no cover - classifier bug
        raise lark.exceptions.UnexpectedCharacters(kinds, end, 1, end + 1)
    token = _Run()
    token.type = "$END"
    token.start_pos = end
    yield token


def _parse_kinds(kinds: str) -> lark.Tree:
    """Parse a string of line kinds into the block tree."""
    return _driver().parse_tokens(_kind_tokens(kinds), "start")


@functools.lru_cache(maxsize=4096)
def _parse_kinds_cached(kinds: str) -> lark.Tree:
    """Parse a short kinds string; list items repeat the same few shapes."""
    # Trees are only read, never mutated, so sharing them is safe.
    return _parse_kinds(kinds)


# -- building blocks -----------------------------------------------------------


class _Level:
    """The lines of one container level and where they sit in SKILL.md."""

    __slots__ = ("cols", "depth", "file", "lines", "texts")

    def __init__(self, texts, lines, cols, file, depth):
        self.texts: list[str] = texts
        self.lines: list[int] = lines
        self.cols: list[int] = cols  # 0-based column of texts[k][0]
        self.file: str = file
        self.depth: int = depth


def _parse_level(level: _Level) -> list[Block]:
    """Classify, parse and build the blocks of one container level."""
    if not level.texts:
        return []
    kinds, info = _Classifier(level.texts).run()
    try:
        tree = _parse_kinds_cached(kinds) if len(kinds) <= 64 else _parse_kinds(kinds)
    except lark.exceptions.LarkError as exc:  # pragma: no cover - classifier bug
        raise SkvmError.at(
            Location(level.file, level.lines[0], 1),
            f"internal error: Markdown block grammar rejected line kinds: {exc}",
        ) from None
    return [_build(level, node, info) for node in tree.children]


def _where(level: _Level, k: int) -> tuple[int, int]:
    """SKILL.md (line, 1-based col of the first non-blank char) of line ``k``."""
    return level.lines[k], level.cols[k] + _indent(level.texts[k])[1] + 1


def _last_nonblank(level: _Level, ks: list[int], default: int) -> int:
    """SKILL.md line of the last non-blank line among indices ``ks``."""
    for k in reversed(ks):
        if level.texts[k].strip(" \t"):
            return level.lines[k]
    return default


def _build(level: _Level, node: lark.Tree, info: list[object]) -> Block:
    """Turn one grammar node into a block."""
    return _builders_by_rule()[node.data](level, node, info)


@functools.lru_cache(maxsize=1)
def _builders_by_rule() -> dict:
    """:data:`_BUILDERS` keyed by the grammar's own rule names.

    A tree's ``data`` is its rule's name object, a ``lark.Token`` whose
    ``__eq__`` is Python code; looked up among those very objects, it is
    found by identity and that ``__eq__`` never runs.
    """
    names = [rule.origin.name for rule in _parser().rules]
    return {name: _BUILDERS[name] for name in names if name in _BUILDERS}


def _tokens(node: lark.Tree) -> list[int]:
    """Line indices covered by a node's tokens, in order (a token may be a run)."""
    out: list[int] = []
    for tok in node.children:
        out.extend(range(tok.start_pos, tok.start_pos + len(tok)))
    return out


def _build_heading(level, node, info) -> Heading:
    (k,) = _tokens(node)
    line, col = _where(level, k)
    st = level.texts[k].lstrip(" \t")
    m = _ATX.match(st)
    text = _ATX_CLOSE.sub("", m.group(2).strip() if m else "").strip()
    return Heading(len(m.group(1)) if m else 1, text, line, col, line)


def _build_setext(level, node, info) -> Heading:
    ks = _tokens(node)
    line, col = _where(level, ks[0])
    underline = level.texts[ks[-1]].strip()
    text = "\n".join(level.texts[k].strip(" \t") for k in ks[:-1])
    return Heading(1 if underline.startswith("=") else 2, text, line, col, level.lines[ks[-1]])


def _build_paragraph(level, node, info) -> Paragraph:
    ks = _tokens(node)
    line, col = _where(level, ks[0])
    text = "\n".join(level.texts[k].strip(" \t") for k in ks)
    return Paragraph(text, line, col, level.lines[ks[-1]])


def _build_fenced(level, node, info) -> CodeBlock:
    ks = _tokens(node)
    line, col = _where(level, ks[0])
    _char, _length, info_string = info[ks[0]]
    closed = node.children[-1].type == "FENCE_CLOSE" and len(ks) > 1
    body = ks[1:-1] if closed else ks[1:]
    code = "\n".join(info[k] for k in body)
    lang = info_string.split()[0] if info_string else None
    return CodeBlock(lang, code, True, info_string, line, col, level.lines[ks[-1]], closed)


def _build_indented(level, node, info) -> CodeBlock:
    ks = _tokens(node)
    line, col = _where(level, ks[0])
    code = "\n".join(info[k][0] if info[k] else "" for k in ks)
    return CodeBlock(None, code, False, "", line, col, level.lines[ks[-1]])


def _lone_text(st: str) -> bool:
    """Whether ``st``, the only line of a container, can only classify as text.

    Mirrors the checks :meth:`_Classifier.run` makes on a line with no
    paragraph before it and no line after it (so no setext underline and no
    table), conservatively: a line that might start any other block returns
    False and takes the full path.
    """
    first = st[0]
    if first in "<>":
        return False
    if first == "#":
        return _ATX.match(st) is None
    if first in "`~":
        return _fence_open(st) is None
    if first in "-*_+=" or first.isdigit():
        return not _THEMATIC.match(st) and _list_marker(st) is None
    return True


def _container_blocks(level: _Level, entries: list[tuple[str, int, int]]) -> list[Block]:
    """Parse a container's contents from (text, SKILL.md line, 0-based col) entries.

    The contents are a level one deeper than ``level``; past MAX_DEPTH they
    are kept as prose.
    """
    while entries and not entries[-1][0].strip(" \t"):
        entries.pop()
    if not entries:
        return []
    depth = level.depth + 1
    if depth > MAX_DEPTH:
        text = "\n".join(e[0].strip(" \t") for e in entries)
        return [Paragraph(text, entries[0][1], entries[0][2] + 1, entries[-1][1])]
    if len(entries) == 1:
        # Most list items are one line of text: skip the classifier and the
        # grammar, which would only find that one paragraph (as _build_paragraph
        # would build it).
        text, line, col = entries[0]
        ind, nch = _indent(text)
        if ind < 4 and _lone_text(text[nch:]):
            return [Paragraph(text.strip(" \t"), line, col + nch + 1, line)]
    child = _Level(
        [e[0] for e in entries],
        [e[1] for e in entries],
        [e[2] for e in entries],
        level.file,
        depth,
    )
    return _parse_level(child)


def _build_item(level: _Level, node: lark.Tree, info) -> tuple[ListItem, str, int | None]:
    ks = _tokens(node)
    k0 = ks[0]
    key, number, content, content_start, marker_start = info[k0]
    line = level.lines[k0]
    col = level.cols[k0] + marker_start + 1
    entries = [(content, line, level.cols[k0] + content_start)]
    for k in ks[1:]:
        rest, used = info[k]
        entries.append((rest, level.lines[k], level.cols[k] + used))
    blocks = _container_blocks(level, entries)
    text = ""
    if blocks and isinstance(blocks[0], Paragraph):
        text = blocks[0].text
        blocks = blocks[1:]
    checked = None
    m = _TASK.match(text)
    if m:
        checked = m.group(1) != " "
        text = text[m.end() :]
    end_line = _last_nonblank(level, ks, line)
    return ListItem(number, text, tuple(blocks), line, col, end_line, checked), key, number


def _build_list(level, node, info) -> ListBlock:
    built = [_build_item(level, child, info) for child in node.children]
    items = tuple(b[0] for b in built)
    key, start = built[0][1], built[0][2]
    ordered = key in ".)"
    first = items[0]
    return ListBlock(
        ordered, items, first.line, first.col, items[-1].end_line, key, start if ordered else None
    )


_ALIGN = {(True, True): "center", (True, False): "left", (False, True): "right"}


def _build_table(level, node, info) -> Table:
    ks = _tokens(node)
    line, col = _where(level, ks[0])
    # The classifier split the header and delimiter rows (info of the header line).
    header_cells, delimiter_cells = info[ks[0]]
    header = tuple(header_cells)
    align = tuple(_ALIGN.get((c.startswith(":"), c.endswith(":"))) for c in delimiter_cells)
    rows = tuple(tuple(_split_cells(level.texts[k])) for k in ks[2:])
    row_lines = tuple(level.lines[k] for k in ks[2:])
    return Table(header, rows, line, col, level.lines[ks[-1]], align, row_lines)


def _build_quote(level, node, info) -> BlockQuote:
    ks = _tokens(node)
    line, col = _where(level, ks[0])
    entries = []
    for k in ks:
        body, used, _lazy = info[k]
        entries.append((body, level.lines[k], level.cols[k] + used))
    blocks = _container_blocks(level, entries)
    return BlockQuote(tuple(blocks), line, col, level.lines[ks[-1]])


def _build_comment(level, node, info) -> HtmlComment:
    ks = _tokens(node)
    line, col = _where(level, ks[0])
    raw = "\n".join(level.texts[k] for k in ks)
    start = raw.find("<!--") + 4
    end = raw.find("-->", start)
    text = raw[start:] if end < 0 else raw[start:end]
    return HtmlComment(text.strip(), line, col, level.lines[ks[-1]])


def _build_html(level, node, info) -> HtmlBlock:
    ks = _tokens(node)
    line, col = _where(level, ks[0])
    return HtmlBlock("\n".join(level.texts[k] for k in ks), line, col, level.lines[ks[-1]])


def _build_break(level, node, info) -> ThematicBreak:
    (k,) = _tokens(node)
    line, col = _where(level, k)
    return ThematicBreak(line, col, line)


_BUILDERS = {
    "atx_heading": _build_heading,
    "setext_heading": _build_setext,
    "paragraph": _build_paragraph,
    "fenced_code": _build_fenced,
    "indented_code": _build_indented,
    "list_block": _build_list,
    "table": _build_table,
    "block_quote": _build_quote,
    "html_comment": _build_comment,
    "html_block": _build_html,
    "thematic_break": _build_break,
}


# -- public API ----------------------------------------------------------------


def parse_markdown(text: str, file: str = "SKILL.md", first_line: int = 1) -> tuple[Block, ...]:
    """Parse a Markdown body into blocks; total, linear time.

    Args:
        text: the body (CRLF and lone CR are treated as line breaks).
        file: the file name used if an internal error must be reported.
        first_line: the SKILL.md line number of the body's first line
            (``Frontmatter.body_start_line``), so blocks carry file lines.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.removeprefix("\ufeff")
    texts = text.split("\n")
    if texts and texts[-1] == "":
        texts.pop()
    lines = list(range(first_line, first_line + len(texts)))
    return tuple(_parse_level(_Level(texts, lines, [0] * len(texts), file, 0)))


def iter_blocks(blocks: tuple[Block, ...] | list[Block]) -> Iterator[Block]:
    """Every block, depth first in source order, including list items' and quotes' blocks."""
    stack: list[Block] = list(reversed(blocks))
    while stack:
        block = stack.pop()
        yield block
        if isinstance(block, ListBlock):
            for item in reversed(block.items):
                stack.extend(reversed(item.children))
        elif isinstance(block, BlockQuote):
            stack.extend(reversed(block.blocks))


def sections(blocks: tuple[Block, ...] | list[Block]) -> Section:
    """Group top-level blocks into a tree of sections by heading level."""

    class _Open:
        __slots__ = ("blocks", "children", "heading", "level")

        def __init__(self, heading, level):
            self.heading, self.level, self.blocks, self.children = heading, level, [], []

    def freeze(open_: _Open) -> Section:
        return Section(
            open_.heading,
            open_.level,
            tuple(open_.blocks),
            tuple(freeze(c) for c in open_.children),
        )

    root = _Open(None, 0)
    stack = [root]
    for block in blocks:
        if isinstance(block, Heading):
            while stack[-1].level >= block.level:
                stack.pop()
            section = _Open(block, block.level)
            stack[-1].children.append(section)
            stack.append(section)
        else:
            stack[-1].blocks.append(block)
    return freeze(root)
