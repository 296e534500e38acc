"""Tests of the legalize transform and its strategy table."""

from __future__ import annotations

from pathlib import Path

import pytest

from skvm.capabilities import PRIMITIVES
from skvm.diagnostics import DiagnosticEngine, Severity, SkvmError
from skvm.ir.attributes import Cap
from skvm.ir.operation import Module
from skvm.ir.parser import parse_module
from skvm.ir.printer import print_module
from skvm.ir.verifier import verify
from skvm.passes.analysis.caps import MODEL_OPS, op_caps
from skvm.passes.base import PassContext
from skvm.passes.manager import AnalysisManager, PassManager
from skvm.passes.pipeline import parse_pipeline
from skvm.passes.transforms.legalize import Legalize, Namer, Rewriter, legalize_module
from skvm.passes.transforms.legalize_strategies import STRATEGIES, table_problems
from skvm.targets.profile import TargetProfile, builtin_targets, load_target, uniform_target

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "corpus"
SCHEMA = '{\\"type\\": \\"object\\"}'


def target_with(overrides: dict[str, int | None], base: int = 3) -> TargetProfile:
    """A synthetic target at ``base`` everywhere except ``overrides`` (None = unmeasured)."""
    levels = tuple(
        (p, overrides.get(p, base)) for p in PRIMITIVES if not (p in overrides and overrides[p] is None)
    )
    missing = frozenset(p for p, v in overrides.items() if v is None)
    return TargetProfile("synthetic/test", "unit", levels, missing)


def module_with_step(
    caps: str,
    *,
    kind: str = "llm.step",
    commands: bool = False,
    result: str = "text",
    extra: str = "",
) -> Module:
    """A one-step skill whose step needs ``caps``."""
    attrs = [f"caps = [{caps}]"]
    if commands:
        attrs.append('commands = ["python scripts/tool.py in.txt"]')
    if extra:
        attrs.append(extra)
    rtype = {"text": "text", "json": f'json<"{SCHEMA}">', "bool": "bool"}[result]
    text = f"""skill @t {{
  meta {{name = "t"}}
  resource @tool_py = "scripts/tool.py" {{kind = script}}
  proc @main(%in: text) -> any {{
    %r = {kind} "Do the task" (%in) {{{", ".join(attrs)}}} : {rtype}
    ctl.return (%r)
  }}
}}
"""
    return parse_module(text, "t.skir")


def run_legalize(module: Module, target, allow_illegal: bool = False, stats: bool = False):
    engine = DiagnosticEngine(stream=None, remark_filter="legalize")
    ctx = PassContext(diagnostics=engine, allow_illegal=allow_illegal,
                      extra={"stats": {}} if stats else {})
    out = legalize_module(module, target, ctx)
    return out.module, engine, ctx


def model_ops(module: Module):
    return [op for op in module.walk() if op.name in MODEL_OPS]


def assert_legal(module: Module, target) -> None:
    """Every known requirement of every op is within the target's reach."""
    for op in module.walk():
        needs = op_caps(op)
        if needs is None:
            continue
        for cap in needs.caps:
            have = target.level(cap.primitive)
            assert have is None or cap.level <= have, f"{op.name} still needs {cap}"


def assert_verifies(module: Module) -> None:
    problems = verify(module)
    assert not problems, [d.message for d in problems] + [print_module(module)]
    # Round trip: the printed output parses back to the same module.
    assert parse_module(print_module(module), "rt.skir") == module


# -- the table ----------------------------------------------------------------------


def test_table_covers_every_primitive_and_gap():
    assert table_problems() == []
    assert set(STRATEGIES) == set(PRIMITIVES)
    assert all(set(STRATEGIES[p]) == {1, 2, 3} for p in PRIMITIVES)


def test_browser_l2_has_no_compensation():
    kinds = {s.kind for s in STRATEGIES["tool.browser"][2]}
    assert "compensation" not in kinds and kinds


GAPS = [(p, lvl) for p in PRIMITIVES for lvl in (3, 2, 1)]


def _setup(prim: str, level: int, strategy):
    """A module and a target in which ``strategy`` is the one that applies."""
    result = "json" if strategy.mechanism == "check-schema" else "text"
    module = module_with_step(
        f"{prim}:L{level}", commands=strategy.mechanism == "eliminate", result=result
    )
    target = target_with({prim: level - 1})
    return module, target


# -- every primitive x gap x strategy --------------------------------------------------


@pytest.mark.parametrize(
    "prim,level,index",
    [(p, lvl, i) for p, lvl in GAPS for i in range(len(STRATEGIES[p][lvl]))],
    ids=lambda v: str(v),
)
def test_each_strategy_applies_and_lowers(prim, level, index):
    """Each strategy, applied alone, closes its gap and leaves valid IR."""
    strategy = STRATEGIES[prim][level][index]
    module, target = _setup(prim, level, strategy)
    proc = module.procs()[0]
    op = proc.regions[0].ops[0]
    rw = Rewriter(target, Namer({"in", "r"}), {"scripts/tool.py": "tool_py"})
    assert rw.why_not(strategy, op) is None
    new_ops = rw.apply(strategy, op, Cap(prim, level), level - 1)
    body = proc.regions[0].with_ops(list(new_ops) + list(proc.regions[0].ops[1:]))
    new_module = module.with_ops(
        [proc.with_regions([body]) if o is proc else o for o in module.body.ops]
    )
    assert_verifies(new_module)
    for new in new_module.walk():
        needs = op_caps(new)
        if needs is not None:
            assert needs.level(prim) <= level - 1
    records = [r for o in new_module.walk() for r in o.attr("legalized", ())]
    assert any(r.startswith(f"{prim}:L{level}->") and strategy.label in r for r in records)
    assert rw.remarks and prim in rw.remarks[0][0] and strategy.label in rw.remarks[0][0]


@pytest.mark.parametrize("prim,level", GAPS, ids=lambda v: str(v))
def test_pass_legalizes_every_primitive_and_gap(prim, level):
    """The pass makes a step needing prim:L<level> legal on a target one level short."""
    module = module_with_step(f"{prim}:L{level}", commands=True)
    target = target_with({prim: level - 1})
    out, engine, _ = run_legalize(module, target)
    assert not engine.has_errors, [d.message for d in engine.diagnostics]
    assert out is not module
    assert_verifies(out)
    assert_legal(out, target)
    remarks = engine.of(Severity.REMARK)
    assert any(f"{prim}:L{level} -> L" in d.message for d in remarks)
    again, engine2, _ = run_legalize(out, target)
    assert again is out and not engine2.of(Severity.REMARK)


@pytest.mark.parametrize("prim", list(PRIMITIVES))
def test_l3_to_l0_is_legalized_or_reported(prim):
    """A full three-level gap is closed or reported as a located error, never a crash."""
    module = module_with_step(f"{prim}:L3", commands=True)
    target = target_with({prim: 0})
    out, engine, _ = run_legalize(module, target)
    if engine.has_errors:
        assert out is module
        assert all(d.loc is not None for d in engine.of(Severity.ERROR))
    else:
        assert_verifies(out)
        assert_legal(out, target)


# -- specific behaviours ------------------------------------------------------------------


def test_arithmetic_substitutes_code_when_target_can_run_it():
    module = module_with_step("reason.arithmetic:L3")
    target = target_with({"reason.arithmetic": 1})
    out, _, _ = run_legalize(module, target)
    (step,) = model_ops(out)
    assert "Write a Python script" in step.attr("prompt")
    assert {str(c) for c in step.attr("caps")} == {
        "gen.code.python:L2", "tool.exec:L2", "follow.delegation:L1"
    }
    assert step.attr("legalized") == ("reason.arithmetic:L3->L0 substitution:python-script",)


def test_arithmetic_compensates_when_code_is_not_available():
    module = module_with_step("reason.arithmetic:L3")
    target = target_with({"reason.arithmetic": 1, "tool.exec": 0})
    out, _, _ = run_legalize(module, target)
    (step,) = model_ops(out)
    assert step.attr("caps") == (Cap("reason.arithmetic", 1),)
    assert step.attr("legalized") == (
        "reason.arithmetic:L3->L2 compensation:worked-steps",
        "reason.arithmetic:L2->L1 compensation:one-operation-per-line",
    )
    assert "one operation per line" in step.attr("template")


def test_elimination_uses_resources_and_drops_the_step():
    module = module_with_step("tool.exec:L2", commands=True)
    out, _, _ = run_legalize(module, target_with({"tool.exec": 0}))
    body = out.procs()[0].regions[0].ops
    assert [o.name for o in body] == ["tool.exec", "ctl.return"]
    assert body[0].results[0].name == "r"
    assert str(body[0].attr("argv")[1]) == "tool_py" or body[0].attr("argv")[1].name == "tool_py"
    assert_verifies(out)


def test_elimination_keeps_a_residual_step_for_the_rest():
    module = module_with_step("tool.exec:L2, gen.text.prose:L2", commands=True)
    out, _, _ = run_legalize(module, target_with({"tool.exec": 0}))
    body = out.procs()[0].regions[0].ops
    assert [o.name for o in body] == ["tool.exec", "llm.step", "ctl.return"]
    assert body[1].attr("caps") == (Cap("gen.text.prose", 2),)
    assert body[1].operands == ("in", body[0].results[0].name)
    assert not body[1].has_attr("commands")
    assert_verifies(out)


def test_script_attribute_becomes_tool_script():
    module = module_with_step("tool.exec:L1", extra='script = @tool_py, script_args = ["--all"]')
    out, _, _ = run_legalize(module, target_with({"tool.exec": 0}))
    first = out.procs()[0].regions[0].ops[0]
    assert first.name == "tool.script" and first.attr("args") == ("--all",)
    assert_verifies(out)


def test_illegal_op_is_a_located_error_and_left_unchanged():
    module = module_with_step("tool.exec:L1")
    out, engine, _ = run_legalize(module, target_with({"tool.exec": 0}))
    (err,) = engine.of(Severity.ERROR)
    assert "cannot legalize '%r' (llm.step)" in err.message and "tool.exec:L1" in err.message
    assert err.loc is not None and err.loc.line == 5
    assert any("commands" in n.message for n in err.notes)
    assert out is module


def test_allow_illegal_turns_the_error_into_a_warning():
    module = module_with_step("tool.exec:L1")
    _, engine, _ = run_legalize(module, target_with({"tool.exec": 0}), allow_illegal=True)
    assert not engine.has_errors
    assert any("cannot legalize" in d.message for d in engine.of(Severity.WARNING))


def test_failure_reports_the_original_requirement_and_the_stuck_gap():
    module = module_with_step("tool.browser:L3")
    target = target_with({"tool.browser": 0, "tool.web": 0, "tool.exec": 0})
    out, engine, _ = run_legalize(module, target)
    (err,) = engine.of(Severity.ERROR)
    assert "needs tool.browser:L3" in err.message and "L2 -> L1" in err.message
    assert out is module


def test_unknown_primitive_is_not_l0():
    module = module_with_step("tool.web:L3")
    out, engine, _ = run_legalize(module, target_with({"tool.web": None}), stats=True)
    assert out is module
    (warning,) = engine.of(Severity.WARNING)
    assert "did not measure 'tool.web'" in warning.message
    assert any("unknown, not L0" in d.message for d in engine.of(Severity.REMARK))


def test_unknown_need_blocks_a_substitution():
    module = module_with_step("tool.browser:L2")
    target = target_with({"tool.browser": 1, "tool.web": None, "tool.exec": 0})
    _, engine, _ = run_legalize(module, target)
    (err,) = engine.of(Severity.ERROR)
    assert any("target has unknown" in n.message for n in err.notes)


def test_default_caps_are_legalized_when_needed():
    module = module_with_step("reason.logic:L1", kind="llm.judge", result="bool")
    module = parse_module(print_module(module).replace(" {caps = [reason.logic:L1]}", ""), "t.skir")
    out, _, _ = run_legalize(module, target_with({"reason.logic": 0}))
    (judge,) = [o for o in out.walk() if o.name in MODEL_OPS]
    assert judge.attr("legalized") == ("reason.logic:L1->L0 substitution:python-script",)
    assert_verifies(out)


def test_verify_rewrite_without_result():
    text = """skill @t {
  proc @main(%in: text) {
    llm.step "Tidy the files" (%in) {caps = [follow.constraint:L3]}
    ctl.return
  }
}
"""
    module = parse_module(text, "t.skir")
    out, _, _ = run_legalize(module, target_with({"follow.constraint": 2}))
    names = [o.name for o in out.procs()[0].regions[0].ops]
    assert names == ["llm.step", "llm.judge", "ctl.if", "ctl.return"]
    assert_verifies(out)


def test_split_names_do_not_clash():
    text = """skill @t {
  proc @main(%in: text) -> text {
    %r_part1 = llm.gen "x" (%in) : text
    %r = llm.step "Plan it" (%r_part1) {caps = [reason.planning:L3]} : text
    ctl.return (%r)
  }
}
"""
    out, _, _ = run_legalize(parse_module(text, "t.skir"), target_with({"reason.planning": 2}))
    assert_verifies(out)
    names = [o.results[0].name for o in out.procs()[0].regions[0].ops if o.results]
    assert names == ["r_part1", "r_part1_1", "r"]


def test_nested_ops_are_legalized():
    text = """skill @t {
  proc @main(%files: list<path>) {
    ctl.for_each (%files) as (%f: path) {
      %s = llm.step "Sum the numbers in the file" (%f) {caps = [reason.arithmetic:L2]} : text
    }
    ctl.return
  }
}
"""
    out, _, _ = run_legalize(parse_module(text, "t.skir"), target_with({"reason.arithmetic": 1}))
    loop = out.procs()[0].regions[0].ops[0]
    assert loop.regions[0].ops[0].attr("legalized")
    assert_verifies(out)


def test_stats_counters():
    module = module_with_step("reason.arithmetic:L3, tool.exec:L2", commands=True)
    target = target_with({"reason.arithmetic": 1, "tool.exec": 0})
    _, _, ctx = run_legalize(module, target, stats=True)
    assert ctx.extra["stats"]["legalize.ops-legalized.compensation"] == 2
    # The commands cover tool.exec: the residual step keeps only the arithmetic.
    assert ctx.extra["stats"]["legalize.ops-legalized.elimination"] == 1


# -- the pass in the pass manager ----------------------------------------------------------


def test_no_target_is_a_located_error():
    module = module_with_step("reason.logic:L2")
    manager = PassManager(parse_pipeline("legalize"), PassContext())
    with pytest.raises(SkvmError) as info:
        manager.run(module)
    (diag,) = info.value.diagnostics
    assert "--target" in diag.message and diag.loc is not None and diag.loc.line == 5
    assert "built-in targets" in diag.notes[0].message


def test_target_option_overrides_context():
    module = module_with_step("tool.exec:L2", commands=True)
    ctx = PassContext(target="gpt-5.4@bare-agent")
    out = Legalize(target="qwen3.5-9b@bare-agent").run(module, AnalysisManager(), ctx).module
    assert out is not module  # qwen3.5-9b has tool.exec:L0; gpt-5.4 would keep the step
    assert Legalize().run(module, AnalysisManager(), ctx).module is module


def test_pipeline_text_round_trips():
    (p,) = parse_pipeline("legalize{target=qwen3.5-9b@bare-agent}")
    assert p.target == "qwen3.5-9b@bare-agent"


# -- every built-in target, hand-written modules ------------------------------------------

HAND_WRITTEN = """skill @invoices {
  meta {description = "Totals invoices, writes a report, files it online.", name = "invoices"}
  resource @totals_py = "scripts/totals.py" {kind = script}
  ctx.rule must "Never round before the final step."
  proc @main(%inv: text, %files: list<path>) -> text {
    %data = llm.step "Extract line items as JSON" (%inv) {caps = [gen.text.structured:L3, follow.format:L3]} : json<"{\\"type\\": \\"object\\"}">
    %sum = llm.step "Compute totals with VAT and discounts" (%data) {caps = [reason.arithmetic:L3, follow.delegation:L2]} : text
    %run = llm.step "Run the totals script" (%data) {caps = [tool.exec:L3, gen.code.shell:L3], commands = ["python scripts/totals.py data.json | tee totals.txt"]} : text
    %plan = llm.step "Plan the filing" (%sum) {caps = [reason.planning:L3, reason.logic:L3]} : text
    ctl.for_each (%files) as (%f: path) {
      %n = llm.step "Read the large file and count rows" (%f) {caps = [tool.file.read:L3, reason.arithmetic:L1]} : text
    }
    %rep = llm.gen "Write the long report" (%sum, %plan) {caps = [gen.text.long:L3, gen.text.prose:L3, follow.style:L3, follow.constraint:L3]} : text
    %q = llm.step "Query the DB" (%sum) {caps = [gen.code.sql:L3, gen.code.python:L3, gen.code.javascript:L2]} : text
    %web = llm.step "Fetch rates from the API" (%q) {caps = [tool.web:L3, tool.call.format:L3, tool.call.batch:L3]} : text
    %web2 = llm.step "File it on the portal" (%web) {caps = [tool.browser:L3, gen.code.html:L3, gen.regex:L3, reason.spatial:L3, reason.analysis:L3, tool.file.write:L3, follow.procedure:L3]} : text
    %ok = llm.judge "Is the filing complete?" (%web2) : bool
    ctl.return (%rep)
  }
}
"""


@pytest.mark.parametrize("name", builtin_targets())
def test_builtin_targets_on_hand_written_module(name):
    """Legalize on every built-in target: legal or located errors, valid output, idempotent."""
    module = parse_module(HAND_WRITTEN, "invoices.skir")
    target = load_target(name)
    out, engine, _ = run_legalize(module, target)
    for diag in engine.of(Severity.ERROR):
        assert diag.loc is not None and "cannot legalize" in diag.message
    assert_verifies(out)
    if not engine.has_errors:
        assert_legal(out, target)
    again, engine2, _ = run_legalize(out, target)
    assert again is out
    assert not [d for d in engine2.of(Severity.REMARK) if "unknown" not in d.message]
    assert engine2.error_count == engine.error_count


@pytest.mark.parametrize("name", builtin_targets())
def test_uniform_targets_cover_the_hand_written_module(name):
    del name  # one pass per target keeps the parametrization symmetric with the test above
    module = parse_module(HAND_WRITTEN, "invoices.skir")
    out, engine, _ = run_legalize(module, uniform_target(3))
    assert out is module and not engine.diagnostics


def test_uniform_l2_target_legalizes_everything():
    module = parse_module(HAND_WRITTEN, "invoices.skir")
    target = uniform_target(2)
    out, engine, _ = run_legalize(module, target)
    assert not engine.has_errors, [d.message for d in engine.of(Severity.ERROR)]
    assert_verifies(out)
    assert_legal(out, target)


def test_uniform_l1_target_only_the_browser_flow_is_illegal():
    """L1 everywhere: the browser flow needs tool.web:L2 or pandas-level Python to substitute."""
    module = parse_module(HAND_WRITTEN, "invoices.skir")
    target = uniform_target(1)
    out, engine, _ = run_legalize(module, target)
    errors = engine.of(Severity.ERROR)
    assert [e.message.split(":")[0] for e in errors] == [
        "cannot legalize '%web2' (llm.step) for target uniform-l1@synthetic"
    ]
    assert_verifies(out)
    ops = {o.results[0].name for o in out.walk() if o.results}
    assert "rep_part1" in ops  # the long report was split
    web2 = [o for o in out.walk() if o.results and o.results[0].name == "web2"]
    assert web2[0] is module.procs()[0].regions[0].ops[-3]  # left exactly as it was


# -- the corpus ------------------------------------------------------------------------------


def _corpus_skills():
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.iterdir() if (p / "SKILL.md").is_file())


@pytest.mark.parametrize("skill", _corpus_skills(), ids=lambda p: p.name)
def test_corpus_skills_on_every_target(skill):
    try:
        from skvm.frontend.importer import import_skill
    except ImportError:
        pytest.skip("the front end (skvm.frontend.importer) is not available yet")
    engine = DiagnosticEngine(stream=None)
    module = import_skill(str(skill), engine)
    for name in builtin_targets():
        target = load_target(name)
        out, leg, _ = run_legalize(module, target)
        for diag in leg.of(Severity.ERROR):
            assert diag.loc is not None and "cannot legalize" in diag.message
        assert_verifies(out)
        again, _, _ = run_legalize(out, target)
        assert again is out


def test_corpus_is_present_or_skipped():
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS}")
    assert _corpus_skills()


# -- scale -------------------------------------------------------------------------------------


def _big_module(n_steps: int) -> Module:
    lines = ["skill @big {", "  proc @main(%in: text) -> text {"]
    prims = list(PRIMITIVES)
    for i in range(n_steps):
        p = prims[i % len(prims)]
        cmds = ', commands = ["python x.py"]' if i % 3 == 0 else ""
        lines.append(f'    %s{i} = llm.step "step {i}" (%in) {{caps = [{p}:L3]{cmds}}} : text')
    lines += ["    ctl.return (%in)", "  }", "}"]
    return parse_module("\n".join(lines) + "\n", "big.skir")


def test_large_modules_legalize_completely():
    """Legalize handles 1k and 8k steps (its speed per op is measured in benchmarks/)."""
    target = target_with({"tool.web": 2}, base=1)
    for n in (1000, 8000):
        module = _big_module(n)
        out, engine, _ = run_legalize(module, target)
        assert not engine.has_errors
        assert verify(out) == []