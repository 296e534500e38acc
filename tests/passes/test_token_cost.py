"""Tests of offline token counting (skvm.tokens) and the token-cost analysis."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from skvm import tokens
from skvm.ir.parser import parse_module
from skvm.passes.analysis.token_cost import TokenCostAnalysis, compute_token_cost, tier2_text

TEXT = """skill @s {
  meta {description = "Extracts tables from PDF files.", name = "pdf-tables"}
  ctx.text "Overview" "Use pdfplumber to read each page."
  ctx.rule must "Keep the original file."
  ctx.rule must "Keep the original file."
  proc @main(%p: path) -> text {
    %t = llm.step "Find every table" (%p) {template = "Row by row."} : text
    %w = tool.exec ["wc", "-l"] : text
    ctl.return (%t)
  }
}
"""


@pytest.fixture
def no_tokenizer(monkeypatch, tmp_path):
    monkeypatch.setenv(tokens.ENV_FILE, str(tmp_path / "missing.tiktoken"))
    tokens.reset_cache()
    yield
    monkeypatch.delenv(tokens.ENV_FILE)
    tokens.reset_cache()


def test_bundled_tokenizer_is_found_without_importing_litellm():
    code = (
        "import sys; from skvm import tokens; "
        "print(tokens.tokenizer_name(), tokens.count_tokens('hello world'), 'litellm' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k not in (tokens.ENV_FILE, "TIKTOKEN_CACHE_DIR")}
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.split() == ["cl100k_base", "2", "False"], out.stderr


def test_counts_match_tiktoken_cl100k():
    if tokens.bundled_bpe_file() is None:
        pytest.skip("litellm's bundled cl100k file is not installed")
    tiktoken = pytest.importorskip("tiktoken")
    # tiktoken reads its cache dir first: pointing it at litellm's files keeps this offline.
    code = (
        "import tiktoken, sys; e = tiktoken.get_encoding('cl100k_base'); "
        "print(len(e.encode_ordinary(sys.stdin.read())))"
    )
    text = "Extract every table from report.pdf; write CSV (UTF-8) — ünïcödé, 12345 numbers.\n\n" * 5
    env = dict(os.environ, TIKTOKEN_CACHE_DIR=str(tokens.bundled_bpe_file().parent))
    out = subprocess.run([sys.executable, "-c", code], check=False, input=text, capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert tokens.count_tokens(text) == int(out.stdout)
    del tiktoken


def test_special_token_markers_are_plain_text():
    assert tokens.count_tokens("<|endoftext|>") > 1 or tokens.is_estimate()


def test_empty_text_is_zero():
    assert tokens.count_tokens("") == 0
    assert tokens.count_many([]) == []


def test_count_many_matches_count_tokens():
    texts = ["alpha beta", "γ δ", "x" * 100]
    assert tokens.count_many(texts) == [tokens.count_tokens(t) for t in texts]


def test_fallback_estimate(no_tokenizer):
    assert tokens.tokenizer_name() == tokens.ESTIMATE_NAME and tokens.is_estimate()
    assert tokens.count_tokens("abcdefghi") == 3
    module = parse_module(TEXT, "s.skir")
    text = TokenCostAnalysis().print(compute_token_cost(module), module)
    assert "counts are estimates" in text.splitlines()[0]


def test_corrupt_override_falls_back(monkeypatch, tmp_path):
    bad = tmp_path / "bad.tiktoken"
    bad.write_text("not base64 at all\n")
    monkeypatch.setenv(tokens.ENV_FILE, str(bad))
    tokens.reset_cache()
    try:
        assert tokens.is_estimate()
    finally:
        monkeypatch.delenv(tokens.ENV_FILE)
        tokens.reset_cache()


def test_tiers_and_per_op():
    module = parse_module(TEXT, "s.skir")
    cost = compute_token_cost(module)
    assert cost.tier1 == tokens.count_tokens("pdf-tables\nExtracts tables from PDF files.")
    shown = [op.name for _, op, _ in cost.rows]
    assert shown == ["ctx.text", "ctx.rule", "ctx.rule", "llm.step"]  # tool ops cost nothing
    step = module.procs()[0].regions[0].ops[0]
    assert cost.of(step) == tokens.count_tokens("Find every table\nRow by row.")
    assert cost.tier2 == sum(n for _, _, n in cost.rows)
    assert cost.total == cost.tier1 + cost.tier2
    assert tier2_text(module.procs()[0].regions[0].ops[1]) is None


def test_print_format():
    module = parse_module(TEXT, "s.skir")
    lines = TokenCostAnalysis().print(compute_token_cost(module), module).splitlines()
    assert lines[1].startswith("tier1 (name + description): ")
    assert lines[3].startswith('  #1 ctx.text "Overview": ')
    assert lines[-1].startswith("total (tier1 + tier2): ")


def test_counting_a_large_text():
    """A 900 KB text is counted in one call (speed is measured in benchmarks/)."""
    sentence = "The quick brown fox jumps over the lazy dog. "
    one = tokens.count_tokens(sentence)
    # Joined copies merge a token at each seam: between one-1 and one per copy.
    assert 20000 * (one - 1) <= tokens.count_tokens(sentence * 20000) <= 20000 * one
