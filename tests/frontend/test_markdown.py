"""Tests for the total block-level Markdown parser (skvm/frontend/markdown.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skvm.diagnostics import SkvmError
from skvm.frontend import markdown
from skvm.frontend.markdown import (
    BlockQuote,
    CodeBlock,
    Heading,
    HtmlBlock,
    HtmlComment,
    ListBlock,
    Paragraph,
    Table,
    ThematicBreak,
    iter_blocks,
    parse_markdown,
    sections,
)

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "corpus"
FIXTURES = Path(__file__).parent / "fixtures"


def corpus_skills() -> list[Path]:
    """SKILL.md files of the shared corpus (empty when it is absent)."""
    return sorted(CORPUS.glob("*/SKILL.md")) if CORPUS.is_dir() else []


def one(text: str, **kw):
    """Parse text that must hold exactly one block and return it."""
    blocks = parse_markdown(text, **kw)
    assert len(blocks) == 1, blocks
    return blocks[0]


# -- headings ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, level, title",
    [
        ("# Title", 1, "Title"),
        ("### Three ###", 3, "Three"),
        ("###### six", 6, "six"),
        ("  ## indented", 2, "indented"),
        ("#", 1, ""),
        ("## C# and F#", 2, "C# and F#"),
    ],
)
def test_atx_heading(text, level, title):
    h = one(text)
    assert isinstance(h, Heading) and (h.level, h.text) == (level, title)


def test_hash_without_space_is_prose():
    assert isinstance(one("#hashtag"), Paragraph)
    assert isinstance(one("####### seven"), Paragraph)


def test_setext_headings():
    h1, h2 = parse_markdown("Big\n===\n\nSmall\n---\n")
    assert (h1.level, h1.text, h1.line, h1.end_line) == (1, "Big", 1, 2)
    assert (h2.level, h2.text) == (2, "Small")


def test_dash_rule_after_blank_is_thematic_break():
    blocks = parse_markdown("Text\n\n---\n\nMore\n")
    assert [type(b) for b in blocks] == [Paragraph, ThematicBreak, Paragraph]


@pytest.mark.parametrize("rule", ["***", "* * *", "___", "- - -", "-----"])
def test_thematic_breaks(rule):
    assert isinstance(one(rule), ThematicBreak)


# -- paragraphs ----------------------------------------------------------------


def test_paragraph_lines_join_and_blank_separates():
    a, b = parse_markdown("one\n  two\n\nthree\n")
    assert a.text == "one\ntwo" and (a.line, a.end_line) == (1, 2)
    assert b.text == "three" and b.line == 4


def test_indented_line_continues_paragraph():
    assert one("para\n    still para").text == "para\nstill para"


def test_chinese_and_emoji():
    blocks = parse_markdown("## 🚀 审查流程\n\n1. 检查代码 ✅\n2. 提交报告\n")
    assert blocks[0].text == "🚀 审查流程"
    assert [i.text for i in blocks[1].items] == ["检查代码 ✅", "提交报告"]


# -- code ------------------------------------------------------------------------


def test_fenced_code_with_language():
    c = one("```python title=x\nprint(1)\n\nprint(2)\n```")
    assert isinstance(c, CodeBlock) and c.fenced and c.closed
    assert (c.lang, c.info, c.code) == ("python", "python title=x", "print(1)\n\nprint(2)")
    assert (c.line, c.end_line) == (1, 5)


def test_fenced_code_without_language_and_tilde():
    c = one("~~~\n# not a heading\n- not a list\n~~~")
    assert c.lang is None and c.code == "# not a heading\n- not a list"


def test_longer_fence_contains_shorter():
    c = one("````md\n```bash\nls\n```\n````")
    assert c.code == "```bash\nls\n```"


def test_unclosed_fence_runs_to_end():
    blocks = parse_markdown("text\n\n```bash\nrm -rf build\n# still code\n")
    c = blocks[-1]
    assert isinstance(c, CodeBlock) and not c.closed and c.code == "rm -rf build\n# still code"


def test_indented_code():
    blocks = parse_markdown("Intro\n\n    line one\n\n    line two\n\nAfter\n")
    code = blocks[1]
    assert isinstance(code, CodeBlock) and not code.fenced
    assert code.code == "line one\n\nline two" and code.col == 5
    assert blocks[2].text == "After"


def test_fence_content_keeps_html_and_comments():
    c = one("```html\n<div>\n<!-- c -->\n</div>\n```")
    assert c.code == "<div>\n<!-- c -->\n</div>"


# -- lists -------------------------------------------------------------------------


def test_unordered_list_and_marker_change():
    blocks = parse_markdown("- a\n- b\n* c\n")
    assert [b.marker for b in blocks] == ["-", "*"]
    assert [i.text for i in blocks[0].items] == ["a", "b"]


@pytest.mark.parametrize("delim", [".", ")"])
def test_ordered_list(delim):
    lst = one(f"1{delim} one\n2{delim} two\n10{delim} ten")
    assert lst.ordered and lst.start == 1 and lst.marker == delim
    assert [(i.number, i.text) for i in lst.items] == [(1, "one"), (2, "two"), (10, "ten")]


def test_list_interrupts_paragraph():
    p, lst = parse_markdown("**Trigger conditions:**\n- first\n- second\n")
    assert isinstance(p, Paragraph) and isinstance(lst, ListBlock) and len(lst.items) == 2


@pytest.mark.parametrize("indent", [2, 3, 4])
def test_nested_list_by_indentation(indent):
    pad = " " * indent
    lst = one(f"1. parent\n{pad}- child a\n{pad}- child b\n2. next")
    first = lst.items[0]
    assert first.text == "parent" and len(lst.items) == 2
    (nested,) = first.children
    assert isinstance(nested, ListBlock) and [i.text for i in nested.items] == [
        "child a",
        "child b",
    ]
    assert nested.items[0].line == 2 and nested.items[0].col == indent + 1


def test_three_levels_and_continuation():
    lst = one("- a\n  - b\n    - c\n      more c\n- d")
    c = lst.items[0].children[0].items[0].children[0].items[0]
    assert c.text == "c\nmore c" and (c.line, c.end_line) == (3, 4)


def test_lazy_continuation_line():
    lst = one("- item starts\ncontinues lazily\n- next")
    assert lst.items[0].text == "item starts\ncontinues lazily"


def test_loose_list_with_blank_lines_and_paragraphs():
    lst = one("1. Step one\n\n   Details of one.\n\n2. Step two\n")
    assert len(lst.items) == 2
    assert lst.items[0].children[0].text == "Details of one."
    assert lst.items[0].end_line == 3


def test_code_inside_item_then_paragraph_ends_list():
    src = "2. run:\n   ```bash\n   make\n   ```\nAfter the list.\n3. again\n"
    lst, para, lst2 = parse_markdown(src)
    code = lst.items[0].children[0]
    assert isinstance(code, CodeBlock) and code.code == "make" and (code.line, code.col) == (2, 4)
    assert para.text == "After the list." and lst2.start == 3


def test_fence_in_item_closed_at_lower_indent():
    lst, after = parse_markdown("- step\n  ```\n  code\n```\n\nafter\n")
    code = lst.items[0].children[0]
    assert code.closed and code.code == "code" and after.text == "after"


def test_task_list_items():
    lst = one("- [ ] todo\n- [x] done\n- plain")
    assert [(i.checked, i.text) for i in lst.items] == [
        (False, "todo"),
        (True, "done"),
        (None, "plain"),
    ]


def test_empty_item_does_not_interrupt_paragraph():
    assert isinstance(one("text\n*"), Paragraph)


# -- tables, quotes, html -------------------------------------------------------------


def test_table():
    t = one("| Name | Size |\n|:-----|-----:|\n| a | 1 |\n| b \\| c | 2 |\n")
    assert isinstance(t, Table)
    assert t.header == ("Name", "Size") and t.align == ("left", "right")
    assert t.rows == (("a", "1"), ("b | c", "2")) and t.row_lines == (3, 4)


def test_pipe_in_prose_is_not_a_table():
    assert isinstance(one("a | b\nnot a delimiter"), Paragraph)


def test_block_quote_with_nested_blocks_and_lazy_line():
    q = one("> # Note\n> - one\n>\n> text\nlazy")
    assert isinstance(q, BlockQuote)
    assert [type(b) for b in q.blocks] == [Heading, ListBlock, Paragraph]
    assert q.blocks[2].text == "text\nlazy" and q.blocks[0].col == 3


def test_html_comment_single_and_multi_line():
    a, b = parse_markdown("<!-- one -->\n<!--\nmulti\nline\n-->\n")
    assert isinstance(a, HtmlComment) and a.text == "one"
    assert b.text == "multi\nline" and (b.line, b.end_line) == (2, 5)


def test_unclosed_comment_runs_to_end():
    c = one("<!-- never closed\n# not heading")
    assert isinstance(c, HtmlComment) and c.end_line == 2


def test_html_block_until_blank_line():
    h, p = parse_markdown("<details>\n<summary>More</summary>\n</details>\n\nafter\n")
    assert isinstance(h, HtmlBlock) and h.end_line == 3 and p.text == "after"


# -- positions, line ends, sections ------------------------------------------------------


def test_first_line_offset_and_columns():
    h, lst = parse_markdown("# T\n   - x\n", first_line=7)
    assert (h.line, h.col) == (7, 1)
    assert (lst.line, lst.col) == (8, 4)


def test_crlf_and_cr_keep_line_numbers():
    blocks = parse_markdown("# A\r\n\r\ntext\r\n```\r\ncode\r\n```\r\n")
    assert [b.line for b in blocks] == [1, 3, 4]
    assert blocks[2].code == "code"
    assert [b.line for b in parse_markdown("# A\r\rB\r")] == [1, 3]


def test_tabs():
    lst = one("-\tone\n\t-\tnested")
    assert lst.items[0].text == "one"
    assert lst.items[0].children[0].items[0].text == "nested"
    assert isinstance(one("\tcode"), CodeBlock)


def test_sections_tree():
    blocks = parse_markdown("intro\n# A\na\n## A1\na1\n## A2\n# B\nb\n")
    root = sections(blocks)
    assert root.heading is None and root.blocks[0].text == "intro"
    assert [s.heading.text for s in root.children] == ["A", "B"]
    a = root.children[0]
    assert [s.heading.text for s in a.children] == ["A1", "A2"]
    assert a.blocks[0].text == "a" and a.children[0].blocks[0].text == "a1"


def test_iter_blocks_visits_nested_blocks_in_order():
    blocks = parse_markdown("- a\n  ```\n  x\n  ```\n> q\n")
    kinds = [type(b).__name__ for b in iter_blocks(blocks)]
    assert kinds == ["ListBlock", "CodeBlock", "BlockQuote", "Paragraph"]


def test_fixture_skill_body():
    text = (FIXTURES / "pdf-notes" / "SKILL.md").read_text()
    blocks = parse_markdown(text)
    steps = next(b for b in blocks if isinstance(b, ListBlock) and b.ordered)
    assert len(steps.items) == 3 and steps.items[0].children[0].lang == "bash"
    assert steps.items[0].children[0].line == 19


def test_depth_limit_keeps_text():
    deep = "\n".join(" " * (2 * i) + f"- level {i}" for i in range(60))
    blocks = parse_markdown(deep)
    texts = " ".join(getattr(b, "text", "") for b in iter_blocks(blocks)) + " ".join(
        i.text for b in iter_blocks(blocks) if isinstance(b, ListBlock) for i in b.items
    )
    assert "level 59" in texts
    assert len(parse_markdown("> " * 500 + "deep")) == 1


# -- corpus ------------------------------------------------------------------------------


def test_corpus_parses_and_keeps_every_fence():
    skills = corpus_skills()
    if not skills:
        pytest.skip(f"shared corpus not found at {CORPUS}")
    for path in skills:
        text = path.read_text("utf-8")
        blocks = parse_markdown(text)
        fenced = [b for b in iter_blocks(blocks) if isinstance(b, CodeBlock) and b.fenced]
        fence_lines = len(re.findall(r"^[ \t]*(?:```|~~~)", text, re.MULTILINE))
        assert len(fenced) * 2 == fence_lines, path
        for block in iter_blocks(blocks):
            assert 1 <= block.line <= block.end_line <= text.count("\n") + 1, (path, block)


def test_one_megabyte_parses_completely():
    """A 1 MB body parses into every block (its speed is measured in benchmarks/)."""
    unit = (FIXTURES / "pdf-notes" / "SKILL.md").read_text() + "\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    copies = 1_000_000 // len(unit) + 1
    blocks = parse_markdown(unit * copies)
    tables = [b for b in blocks if isinstance(b, Table)]
    assert len(tables) >= copies


# -- fuzz --------------------------------------------------------------------------------

_MD_PIECES = st.sampled_from(
    [
        "# h",
        "## h ##",
        "text",
        "",
        "    code",
        "```",
        "```py",
        "~~~",
        "- a",
        "  - b",
        "1. x",
        "2) y",
        "* z",
        "> q",
        ">",
        "<!--",
        "-->",
        "<!-- c -->",
        "<div>",
        "</div>",
        "| a | b |",
        "|---|---|",
        "---",
        "===",
        "***",
        "\t- t",
        "-",
        "10.",
        "[ ] x",
        "<script>",
        "</script>",
        "中文 🚀",
        "\r",
        "  ```",
        "   ~~~~",
        "<br/>",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_MD_PIECES, max_size=40))
def test_fuzz_markdown_pieces(pieces):
    _must_parse("\n".join(pieces))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_fuzz_random_text(text):
    _must_parse(text)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data):
    _must_parse(data.decode("utf-8", "replace"))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_fuzz_mutated_corpus(data):
    skills = corpus_skills() or [FIXTURES / "pdf-notes" / "SKILL.md"]
    text = data.draw(st.sampled_from(skills)).read_text("utf-8")
    cut = data.draw(st.integers(0, len(text)))
    at = data.draw(st.integers(0, cut))
    insert = data.draw(_MD_PIECES)
    _must_parse(text[:at] + insert + "\n" + text[at:cut])


def _must_parse(text: str) -> None:
    """Parsing may only raise SkvmError; every block must be well located."""
    try:
        blocks = parse_markdown(text)
    except SkvmError:
        return
    for block in iter_blocks(blocks):
        assert 1 <= block.line <= block.end_line and block.col >= 1


@settings(max_examples=300, deadline=None)
@given(st.one_of(_MD_PIECES, st.text(alphabet=" \t#`~<>|-*_+=0123456789.)[]xa!", max_size=12)))
def test_one_line_container_shortcut_matches_full_parse(line):
    # A one-line list item or quote skips the classifier and the grammar; it
    # must build exactly what the full parse of that level builds.
    line = line.replace("\r", "").replace("\n", "")
    if not line.strip(" \t"):
        return
    parent = markdown._Level([], [], [], "SKILL.md", 0)
    level = markdown._Level([line], [7], [3], "SKILL.md", 1)
    assert markdown._container_blocks(parent, [(line, 7, 3)]) == markdown._parse_level(level)
