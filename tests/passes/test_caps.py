"""Tests of the caps analysis."""

from __future__ import annotations

from skvm.ir.attributes import Cap
from skvm.ir.parser import parse_module
from skvm.passes.analysis.caps import (
    DEFAULT_CAPS,
    CapsAnalysis,
    compute_caps,
    default_caps,
    max_caps,
    op_caps,
)
from skvm.passes.manager import AnalysisManager

TEXT = """skill @s {
  proc @main(%in: text, %xs: list<path>) -> text {
    %a = llm.step "Average the scores" (%in) {caps = [reason.arithmetic:L2, follow.format:L1, reason.arithmetic:L1], evidence = {"reason.arithmetic:L2" = "average the scores"}} : text
    %b = tool.exec ["ls"] : text
    %c = llm.gen "Summarize" (%b) : text
    %d = llm.judge "Done?" (%c) : bool
    %e = llm.step "Emit JSON" (%c) {tools = []} : json
    ctl.for_each (%xs) as (%x: path) {
      %f = llm.step "Compound interest" (%x) {caps = [reason.arithmetic:L3]} : text
    }
    ctl.return (%a)
  }
}
"""


def _module():
    return parse_module(TEXT, "s.skir")


def _ops(module):
    return {op.results[0].name: op for op in module.walk() if op.results}


def test_explicit_caps_are_canonical_with_evidence():
    op = _ops(_module())["a"]
    needs = op_caps(op)
    assert needs.caps == (Cap("reason.arithmetic", 2), Cap("follow.format", 1))
    assert not needs.defaulted
    assert needs.evidence_for(Cap("reason.arithmetic", 2)) == "average the scores"
    assert needs.evidence_for(Cap("follow.format", 1)) is None


def test_deterministic_ops_derive_nothing():
    assert op_caps(_ops(_module())["b"]) is None


def test_defaults_by_kind_and_result_type():
    ops = _ops(_module())
    assert op_caps(ops["c"]).caps == DEFAULT_CAPS["llm.gen"]
    assert op_caps(ops["d"]).caps == (Cap("reason.logic", 1),)
    e = op_caps(ops["e"])
    assert e.defaulted
    # A JSON result needs structured output; tools = [] means no tool calls.
    assert Cap("gen.text.structured", 1) in e.caps and Cap("tool.call.format", 1) not in e.caps


def test_empty_caps_mean_nothing_needed():
    module = parse_module(TEXT.replace('"Summarize" (%b) :', '"Summarize" (%b) {caps = []} :'), "s.skir")
    assert op_caps(_ops(module)["c"]).caps == ()


def test_skill_summary_takes_the_maximum_and_its_origin():
    result = compute_caps(_module())
    assert result.skill_level("reason.arithmetic") == 3
    entry = next(e for e in result.skill if e.cap.primitive == "reason.arithmetic")
    assert entry.op_path == "@main#5.0#0" and entry.loc is not None
    assert result.skill_level("gen.code.python") == 0


def test_max_caps_drops_l0_and_sorts_in_catalog_order():
    caps = (Cap("follow.style", 1), Cap("gen.regex", 0), Cap("gen.code.python", 2), Cap("follow.style", 3))
    assert max_caps(caps) == (Cap("gen.code.python", 2), Cap("follow.style", 3))


def test_every_default_names_catalog_primitives():
    from skvm.capabilities import is_primitive

    for caps in DEFAULT_CAPS.values():
        assert all(is_primitive(c.primitive) and c.level == 1 for c in caps)


def test_print_is_stable_and_cached():
    module = _module()
    am = AnalysisManager()
    result = am.get("caps", module)
    assert am.get("caps", module) is result and am.run_counts["caps"] == 1
    text = CapsAnalysis().print(result, module)
    assert text == CapsAnalysis().print(compute_caps(module), module)
    assert text.splitlines()[0] == "@main#0 llm.step: reason.arithmetic:L2, follow.format:L1"
    assert '  reason.arithmetic:L2 <- "average the scores"' in text
    assert "(default)" in text and "tool.exec" not in text


def test_default_caps_of_a_plain_step():
    module = parse_module('skill @s {\n  proc @main() {\n    llm.step "x"\n    ctl.return\n  }\n}\n', "s.skir")
    op = module.procs()[0].regions[0].ops[0]
    assert default_caps(op) == (Cap("tool.call.format", 1), Cap("follow.procedure", 1))
