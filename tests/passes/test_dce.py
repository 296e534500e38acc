"""Tests of the dce transform: every rule, remarks, stats, idempotence, verification."""

from __future__ import annotations

from pathlib import Path

import pytest

from skvm.diagnostics import DiagnosticEngine, Severity
from skvm.ir.parser import parse_module
from skvm.ir.printer import print_module
from skvm.ir.verifier import verify
from skvm.passes.base import PassContext
from skvm.passes.manager import PassManager
from skvm.passes.pipeline import parse_pipeline
from skvm.passes.transforms.dce import eliminate, op_tokens

FILECHECK = Path(__file__).parents[1] / "filecheck" / "passes" / "dce.skir"


def _dce(text: str):
    ctx = PassContext(diagnostics=DiagnosticEngine(stream=None, remark_filter="dce"), extra={"stats": {}})
    module = parse_module(text, "t.skir")
    out = PassManager(parse_pipeline("dce"), ctx).run(module)
    return module, out, ctx


def _proc(body: str, extra: str = "") -> str:
    return "skill @s {\n" + extra + "  proc @main(%t: text) -> text {\n" + body + "\n  }\n}\n"


def test_filecheck_input_is_verified_and_idempotent():
    module, out, ctx = _dce(FILECHECK.read_text())
    assert verify(out) == []
    again, _ = eliminate(out, PassContext())
    assert again is out
    assert parse_module(print_module(out), "x") == out


def test_transitive_dead_model_calls():
    _, out, ctx = _dce(_proc(
        '    %a = llm.gen "a" (%t) : text\n    %b = llm.gen "b" (%a) : text\n'
        '    %c = llm.judge "c" (%b) : bool\n    ctl.return (%t)'
    ))
    assert "llm." not in print_module(out)
    assert ctx.extra["stats"]["dce.ops-removed"] == 3
    assert ctx.extra["stats"]["dce.tokens-saved"] >= 3


def test_effects_stay():
    body = (
        '    %a = tool.exec ["rm", "x"] : text\n    %b = llm.step "do" (%t) : text\n'
        '    %c = tool.write "o.txt" (%t) : path\n    %d = tool.fetch "https://x" : text\n'
        '    check.cmd ["test", "-s", "o.txt"]\n    ctl.return (%t)'
    )
    module, out, ctx = _dce(_proc(body))
    assert out is module
    assert "dce.ops-removed" not in ctx.extra["stats"]


def test_unused_results_of_control_flow_are_dropped_not_the_work():
    body = (
        '    %c = llm.judge "c" (%t) : bool\n'
        '    %r = ctl.if (%c) {\n      %w = tool.exec ["ls"] : text\n      ctl.yield (%w)\n'
        '    } else {\n      %g = llm.gen "g" (%t) : text\n      ctl.yield (%g)\n    } : text\n'
        '    ctl.return (%t)'
    )
    _, out, ctx = _dce(_proc(body))
    text = print_module(out)
    assert verify(out) == []
    assert "%r" not in text and 'tool.exec ["ls"]' in text and "llm.gen" not in text
    assert any("dropped the unused results" in d.message for d in ctx.diagnostics.of(Severity.REMARK))


def test_used_results_keep_everything():
    body = (
        '    %c = llm.judge "c" (%t) : bool\n'
        '    %r = ctl.if (%c) {\n      %g = llm.gen "g" (%t) : text\n      ctl.yield (%g)\n'
        '    } else {\n      ctl.yield (%t)\n    } : text\n    ctl.return (%r)'
    )
    module, out, _ = _dce(_proc(body))
    assert out is module


def test_context_anchor_contract():
    extra = (
        '  ctx.text "A" "for a" {for = "%a"}\n  ctx.text "B" "for step" {for = "s1"}\n'
        '  ctx.text "C" "for gone step" {for = "#s2"}\n  ctx.text "D" "for proc" {for = "@helper"}\n'
    )
    body = '    %a = llm.gen "x" (%t) {id = "s1"} : text\n    ctl.return (%a)'
    _, out, _ = _dce(_proc(body, extra))
    text = print_module(out)
    assert '"for a"' in text and '"for step"' in text
    assert '"for gone step"' not in text and '"for proc"' not in text


def test_duplicates_only_where_the_first_copy_is_visible():
    extra = (
        '  env.if os "macos" {\n    ctx.rule must "Use brew."\n  } else {\n  }\n'
        '  ctx.rule must "Use brew."\n  ctx.rule must "Use brew."\n'
    )
    _, out, _ = _dce(_proc("    ctl.return (%t)", extra))
    text = print_module(out)
    # The copy inside the branch does not make the module-level one redundant.
    assert text.count('ctx.rule must "Use brew."') == 2


def test_no_main_keeps_every_proc():
    text = "skill @s {\n  proc @a() {\n    ctl.return\n  }\n  proc @b() {\n    ctl.return\n  }\n}\n"
    module, out, _ = _dce(text)
    assert out is module


def test_resource_referenced_from_module_level_and_argv():
    text = (
        'skill @s {\n  resource @a = "scripts/a.py" {kind = script}\n'
        '  resource @b = "references/b.md" {kind = reference}\n  ctx.ref @b\n'
        '  proc @main(%t: text) {\n    %x = tool.exec ["python", @a, %t] : text\n    ctl.return\n  }\n}\n'
    )
    module, out, _ = _dce(text)
    assert out is module


def test_op_tokens_counts_prompt_text():
    module = parse_module('skill @s {\n  ctx.text "Title" "' + "word " * 50 + '"\n}\n', "t")
    assert 40 <= op_tokens(module.body.ops[0]) <= 80


def test_removes_thousands_of_unused_results():
    """Every one of 2,000 unused pure results goes (speed is measured in benchmarks/)."""
    n = 2000
    lines = [f'    %v{i} = llm.gen "p{i}" (%t) : text' for i in range(n)]
    lines.append("    ctl.return (%t)")
    _, out, ctx = _dce(_proc("\n".join(lines)))
    assert ctx.extra["stats"]["dce.ops-removed"] == n
    assert not any(op.name == "llm.gen" for op in out.walk())


def test_whitespace_normalization_matches_the_regex():
    """Context keys normalise whitespace exactly as ``re.sub(r"\\s+", " ", text).strip()``."""
    import random
    import re

    from skvm.passes.transforms.dce import _normalize_space

    space = re.compile(r"\s+")
    # Every whitespace character is in the Basic Multilingual Plane.
    whitespace = [chr(c) for c in range(0x10000) if space.fullmatch(chr(c))]
    alphabet = whitespace + list("ab. ")
    rng = random.Random(5)
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert _normalize_space(text) == space.sub(" ", text).strip()
