"""verify_changed: incremental verification after a pass, by object identity."""

import attrs

from skvm.ir.parser import parse_module
from skvm.ir.verifier import Verifier, symbol_signature, verify, verify_changed

TEXT = """skill @m {
  resource @r = "references/r.md" {kind = reference}
  ctx.ref @r
  proc @main(%t: text) -> text {
    %a = llm.step "one" (%t) : text
    ctl.return (%a)
  }
  proc @other(%t: text) -> text {
    %b = llm.step "two" (%t) : text
    ctl.return (%b)
  }
}
"""


def test_unchanged_ops_are_not_verified_again(monkeypatch):
    module = parse_module(TEXT)
    main = module.procs()[0]
    broken = attrs.evolve(main.regions[0].ops[0], operands=("missing",))
    new_main = main.with_regions([main.regions[0].with_ops([broken, main.regions[0].ops[1]])])
    new = module.with_ops([new_main if op is main else op for op in module.ops])
    seen = []
    original = Verifier._verify_module_level
    monkeypatch.setattr(
        Verifier, "_verify_module_level", lambda self, op: (seen.append(op.attr("sym_name")), original(self, op))
    )
    problems = verify_changed(new, module)
    assert [d.message for d in problems] == ["use of undefined value %missing"]
    assert seen == ["main"]  # only the rebuilt op was checked


def test_changed_symbols_fall_back_to_full_verification():
    module = parse_module(TEXT)
    # Drop the resource: the unchanged ctx.ref now dangles.
    new = module.with_ops([op for op in module.ops if op.name != "skill.resource"])
    assert symbol_signature(new) != symbol_signature(module)
    assert [d.message for d in verify_changed(new, module)] == ["reference to undefined symbol @r"]
    assert verify_changed(new, module) == verify(new)


def test_identical_module_has_nothing_to_check():
    module = parse_module(TEXT)
    assert verify_changed(module, module) == []


def test_ops_taken_over_skip_only_their_own_checks(monkeypatch):
    """Inside a rebuilt procedure, reused ops keep the checks that depend on where they stand."""
    module = parse_module(TEXT)
    main = module.procs()[0]
    step, ret = main.regions[0].ops
    # Swap the two ops: both are the very objects of the valid module, but
    # now ctl.return is not last and uses %a before its definition.
    new_main = main.with_regions([main.regions[0].with_ops([ret, step])])
    new = module.with_ops([new_main if op is main else op for op in module.ops])
    expected = [d.message for d in verify(new)]
    assert "'ctl.return' must be the last op of its region" in expected
    assert "use of undefined value %a" in expected
    own_checks = []
    original = Verifier._verify_own
    monkeypatch.setattr(
        Verifier,
        "_verify_own",
        lambda self, op, spec: (own_checks.append(op), original(self, op, spec))[1],
    )
    assert [d.message for d in verify_changed(new, module)] == expected
    # Only the rebuilt procedure gets its own checks: its reused ops passed
    # them in the valid module, and untouched top-level ops are not visited.
    assert own_checks == [new_main]


def test_new_ops_inside_a_rebuilt_procedure_are_fully_checked():
    module = parse_module(TEXT)
    main = module.procs()[0]
    step, ret = main.regions[0].ops
    bad = attrs.evolve(step, attributes=step.attributes.of({"prompt": 3}))
    new_main = main.with_regions([main.regions[0].with_ops([bad, ret])])
    new = module.with_ops([new_main if op is main else op for op in module.ops])
    problems = [d.message for d in verify_changed(new, module)]
    assert problems == [d.message for d in verify(new)]
    assert any("attribute 'prompt' of 'llm.step'" in p for p in problems)
