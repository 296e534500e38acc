"""Tests for SKILL.md frontmatter parsing and spec warnings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from skvm.diagnostics import DiagnosticEngine, Severity, SkvmError
from skvm.frontend.frontmatter import MESSAGES, estimate_tokens, parse_frontmatter

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = Path(__file__).parents[2] / ".." / "shared" / "corpus"
GOOD = "---\nname: my-skill\ndescription: Does things. Use when asked.\n---\n# Body\n"


def parse(text: str, folder: str | None = "my-skill"):
    """Parse with a silent engine; return (frontmatter, warnings as (line, col, message))."""
    diag = DiagnosticEngine(stream=None)
    fm = parse_frontmatter(text, folder_name=folder, diag=diag)
    assert not diag.of(Severity.ERROR)
    return fm, [(d.loc.line, d.loc.col, d.message) for d in diag.of(Severity.WARNING)]


def messages(warnings) -> list[str]:
    return [w[2] for w in warnings]


def test_valid_frontmatter_has_no_warnings():
    fm, warnings = parse(GOOD)
    assert warnings == []
    assert (fm.name, fm.description, fm.body, fm.body_start_line) == (
        "my-skill",
        "Does things. Use when asked.",
        "# Body\n",
        5,
    )
    assert fm.location_of("description").line == 3 and fm.has_frontmatter


def test_fixture_fields():
    fm, warnings = parse((FIXTURES / "pdf-notes" / "SKILL.md").read_text(), "pdf-notes")
    assert warnings == []
    assert fm.license == "Apache-2.0" and fm.compatibility.startswith("Requires Python")
    assert fm.metadata == (("owner", "skvm-tests"), ("version", "1.0"))
    assert fm.allowed_tools == ("Bash(python:*)", "Read")


def test_messy_fixture_is_tolerated_with_warnings():
    fm, warnings = parse((FIXTURES / "messy_skill" / "SKILL.md").read_text(), "messy_skill")
    msgs = messages(warnings)
    assert fm.name == "Messy Skill"
    assert "'name' 'Messy Skill' should use only lowercase letters a-z, digits and hyphens" in msgs
    assert "'name' 'Messy Skill' does not match the folder name 'messy_skill'" in msgs
    assert (
        "top-level key 'argument-hint' is a Claude Code extension, not in the Agent Skills spec"
        in msgs
    )
    assert "top-level key 'tags' is a Hermes extension, not in the Agent Skills spec" in msgs
    assert fm.allowed_tools == ("Read", "Grep", "Bash(git log:*)")
    assert {e.key: e.value for e in fm.extensions} == {
        "argument-hint": ["file"],
        "version": 2.1,
        "tags": ["demo", "messy"],
    }
    assert fm.extensions[0].harness == "Claude Code" and fm.extensions[0].loc.line == 4


def test_body_dash_rules_are_not_frontmatter():
    fm, _ = parse(GOOD + "\n---\n\nmore\n---\n")
    assert fm.body.count("---") == 2 and fm.body_start_line == 5


def test_missing_frontmatter_falls_back_to_folder_name():
    fm, warnings = parse("# Just a body\n")
    assert not fm.has_frontmatter and fm.name == "my-skill" and fm.name_from_folder
    assert fm.body == "# Just a body\n" and fm.body_start_line == 1
    assert messages(warnings)[:2] == [
        MESSAGES["no-frontmatter"],
        "missing 'name' field; using the folder name 'my-skill'",
    ]


def test_unclosed_frontmatter_is_body():
    fm, warnings = parse("---\nname: x\n")
    assert MESSAGES["unclosed"] in messages(warnings) and fm.body_start_line == 1


def test_crlf_and_bom():
    fm, warnings = parse("\ufeff" + GOOD.replace("\n", "\r\n"))
    assert warnings == [] and fm.name == "my-skill" and fm.body == "# Body\n"


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "'name' is empty; using the folder name 'my-skill'"),
        ("a" * 65, "'name' is longer than 64 characters (65)"),
        ("My Skill", "'name' 'My Skill' should use only lowercase letters a-z, digits and hyphens"),
        ("my_skill", "'name' 'my_skill' should use only lowercase letters a-z, digits and hyphens"),
        ("-my-skill", "'name' '-my-skill' should not start or end with a hyphen"),
        ("my--skill", "'name' 'my--skill' should not contain consecutive hyphens"),
        ("other", "'name' 'other' does not match the folder name 'my-skill'"),
    ],
)
def test_name_rules(name, message):
    _, warnings = parse(f"---\nname: '{name}'\ndescription: d\n---\n")
    assert message in messages(warnings)
    assert next(w for w in warnings if w[2] == message)[:2] == (2, 7)


def test_name_not_a_string_is_coerced():
    fm, warnings = parse("---\nname: 42\ndescription: d\n---\n", folder=None)
    assert fm.name == "42" and "'name' should be a string; using '42'" in messages(warnings)


@pytest.mark.parametrize(
    "field, message",
    [
        ("", MESSAGES["description-missing"]),
        ("description: ''\n", MESSAGES["description-empty"]),
        (
            "description: " + "x" * 1025 + "\n",
            "'description' is longer than 1024 characters (1025)",
        ),
    ],
)
def test_description_rules(field, message):
    _, warnings = parse(f"---\nname: my-skill\n{field}---\n")
    assert message in messages(warnings)


def test_compatibility_too_long_and_empty():
    _, warnings = parse(f"---\nname: my-skill\ndescription: d\ncompatibility: {'y' * 501}\n---\n")
    assert "'compatibility' is longer than 500 characters (501)" in messages(warnings)
    _, warnings = parse("---\nname: my-skill\ndescription: d\ncompatibility: ''\n---\n")
    assert MESSAGES["compatibility-empty"] in messages(warnings)


def test_metadata_values_coerced_and_non_map():
    fm, warnings = parse(
        "---\nname: my-skill\ndescription: d\nmetadata:\n  n: 3\n  ok: yes-str\n---\n"
    )
    assert fm.metadata == (("n", "3"), ("ok", "yes-str"))
    assert (5, 6, "'metadata' value for 'n' is not a string; using '3'") in warnings
    _, warnings = parse("---\nname: my-skill\ndescription: d\nmetadata: [a]\n---\n")
    assert MESSAGES["metadata-not-map"] in messages(warnings)


def test_unknown_key_and_harness_key():
    fm, warnings = parse("---\nname: my-skill\ndescription: d\nfrobnicate: 1\nmodel: opus\n---\n")
    assert (4, 1, "unknown top-level key 'frobnicate' (not in the Agent Skills spec)") in warnings
    assert (
        "top-level key 'model' is a Claude Code extension, not in the Agent Skills spec"
        in messages(warnings)
    )
    assert [(e.key, e.harness) for e in fm.extensions] == [
        ("frobnicate", None),
        ("model", "Claude Code"),
    ]


def test_allowed_tools_forms():
    base = "---\nname: my-skill\ndescription: d\nallowed-tools: {}\n---\n"
    fm, warnings = parse(base.format("Bash(git add:*) Read"))
    assert fm.allowed_tools == ("Bash(git add:*)", "Read") and warnings == []
    fm, warnings = parse(base.format("Read, Write"))
    assert fm.allowed_tools == ("Read", "Write") and MESSAGES["allowed-tools-commas"] in messages(
        warnings
    )
    fm, warnings = parse(base.format("\n  - Read\n  - Write"))
    assert fm.allowed_tools == ("Read", "Write") and MESSAGES["allowed-tools-list"] in messages(
        warnings
    )
    fm, warnings = parse(base.format("7"))
    assert fm.allowed_tools == () and MESSAGES["allowed-tools-type"] in messages(warnings)


def test_flow_style_and_duplicate_keys():
    _, warnings = parse("---\nname: my-skill\ndescription: d\ntags: [a, b]\nname: my-skill\n---\n")
    msgs = messages(warnings)
    assert MESSAGES["flow-style"].format("tags") in msgs
    assert (5, 1, MESSAGES["duplicate-key"].format("name")) in warnings


def test_not_a_mapping():
    fm, warnings = parse("---\n- a\n---\nbody")
    assert MESSAGES["not-mapping"] in messages(warnings) and fm.name == "my-skill"


def test_body_budget_warnings():
    long_body = "line\n" * 501
    _, warnings = parse(GOOD + long_body)
    assert (505, 1, "body is 502 lines; the spec recommends under 500") in warnings
    big_body = "word " * 4100
    _, warnings = parse(GOOD + big_body)
    tokens = estimate_tokens("# Body\n" + big_body)
    assert (
        5,
        1,
        f"body is about {tokens} tokens (estimated); the spec recommends under 5000",
    ) in warnings


def test_yaml_error_is_located_in_skill_md():
    text = "---\nname: my-skill\ndescription: [unclosed\nlicense: x\n---\nbody\n"
    with pytest.raises(SkvmError) as info:
        parse_frontmatter(text, diag=DiagnosticEngine(stream=None))
    (diag,) = info.value.diagnostics
    assert diag.severity is Severity.ERROR and diag.message.startswith(
        "invalid YAML in frontmatter"
    )
    assert diag.loc.file == "SKILL.md" and diag.loc.line >= 3
    assert diag.notes and diag.notes[0].loc.line == 3


def test_yaml_error_position_maps_line_and_column():
    text = "\n---\nname: ok\ndescription: d\nbad: 'unterminated\n---\n"
    with pytest.raises(SkvmError) as info:
        parse_frontmatter(text, diag=DiagnosticEngine(stream=None))
    (diag,) = info.value.diagnostics
    # The frontmatter starts on line 3 (a blank line precedes '---').
    assert (diag.loc.line, diag.loc.col) == (5, 19)  # where the scanner gave up
    assert (diag.notes[0].loc.line, diag.notes[0].loc.col) == (5, 6)  # the quote it was scanning


def test_unquoted_colon_value_is_recovered_with_warning():
    fm, warnings = parse("---\nname: my-skill\ndescription: Use: when asked: often\n---\n")
    assert fm.description == "Use: when asked: often"
    assert any(
        w[2].startswith("invalid YAML in frontmatter (") and "'description'" in w[2]
        for w in warnings
    )
    assert warnings[0][:2] == (3, 17)


def test_alias_bomb_is_bounded():
    rows = ["a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    for prev, cur in zip("abcd", "bcde"):
        rows.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    _, warnings = parse("---\nname: my-skill\ndescription: d\n" + "\n".join(rows) + "\n---\n")
    assert MESSAGES["value-too-large"].format("e") in messages(warnings)


def test_corpus_frontmatter_parses():
    skills = sorted(CORPUS.glob("*/SKILL.md")) if CORPUS.is_dir() else []
    if not skills:
        pytest.skip(f"shared corpus not found at {CORPUS}")
    for path in skills:
        fm, _ = parse(path.read_text("utf-8"), folder=None)
        assert fm.name and fm.description and fm.body_start_line > 2


_YAMLISH = st.sampled_from(
    [
        "name: x",
        "description: d",
        "a: [1, 2",
        "b: {c: d}",
        "- item",
        "  nested: 1",
        "k: v: w",
        "&a x",
        "*a",
        "'",
        '"',
        "? q",
        ": ",
        "---",
        "...",
        "!!binary x",
        "t: 2024-01-01",
        "\t",
        "中文: 🚀",
        "#",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_YAMLISH, max_size=12), st.text(max_size=60))
def test_fuzz_frontmatter(lines, tail):
    text = "---\n" + "\n".join(lines) + "\n---\n" + tail
    try:
        parse_frontmatter(text, folder_name="x", diag=DiagnosticEngine(stream=None))
    except SkvmError as exc:
        assert exc.diagnostics[0].loc is not None


def test_yaml_module_is_safe_loader():
    # The loader must never construct Python objects from tags.
    with pytest.raises(SkvmError):
        parse_frontmatter("---\nx: !!python/object/apply:os.system ['true']\n---\n")
    assert yaml.__version__
