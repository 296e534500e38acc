"""The pass manager: analysis caching and invalidation, pseudo-passes, instrumentation,
the crash reproducer."""

from __future__ import annotations

import io
import re
from pathlib import Path

import attrs
import pytest

from skvm.cli.opt import OptDriver
from skvm.diagnostics import SkvmError
from skvm.ir.parser import parse_module
from skvm.passes.base import Analysis, ModulePass, PassContext, PreservedAnalyses
from skvm.passes.manager import AnalysisManager, Instrumentation, PassManager
from skvm.passes.pipeline import parse_pipeline

MODULE = 'skill @m {\n  ctx.text "a" "b"\n  proc @main(%t: text) {\n    %x = llm.gen "g" (%t) : text\n  }\n}\n'


class CountAnalysis(Analysis):
    """Counts the top-level ops (test analysis)."""

    name = "test-count"
    summary = "number of top-level ops"

    def run(self, module, am):
        """Count."""
        return len(module.ops)

    def print(self, result, module):
        """One line."""
        return f"count = {result}"


class DerivedAnalysis(Analysis):
    """Depends on test-count through the manager (test analysis)."""

    name = "test-derived"
    summary = "twice the count"

    def run(self, module, am):
        """Twice the count."""
        return 2 * am.get("test-count", module)


@attrs.frozen
class AppendText(ModulePass):
    """Appends a ctx.text op; preserves what ``keep`` names (test pass)."""

    name = "test-append"
    summary = "append a ctx.text"
    keep: tuple[str, ...] = ()

    def run(self, module, am, ctx):
        """Append one op."""
        from skvm.ir.operation import Op

        op = Op.build("ctx.text", attributes={"title": "new", "text": "op"})
        return self.changed(module.with_ops(module.ops + (op,)), *self.keep)


@attrs.frozen
class Nothing(ModulePass):
    """Changes nothing (test pass)."""

    name = "test-nothing"
    summary = "no change"

    def run(self, module, am, ctx):
        """Use the analysis, change nothing."""
        am.get("test-count", module)
        return self.unchanged(module)


@attrs.frozen
class Crash(ModulePass):
    """Raises an internal error (test pass)."""

    name = "test-crash"
    summary = "raises RuntimeError"

    def run(self, module, am, ctx):
        """Crash."""
        raise RuntimeError("boom")


@attrs.frozen
class Breaks(ModulePass):
    """Produces invalid IR (test pass)."""

    name = "test-break"
    summary = "adds a use of an undefined value"

    def run(self, module, am, ctx):
        """Add an op using %nowhere."""
        from skvm.ir.operation import Op

        proc = module.procs()[0]
        body = proc.regions[0]
        bad = Op.build("check.exists", operands=["nowhere"])
        new_proc = proc.with_regions([body.with_ops(body.ops + (bad,))])
        return self.changed(module.with_ops([new_proc if o is proc else o for o in module.ops]))


@attrs.frozen
class Refuses(ModulePass):
    """Raises a located SkvmError (bad input, not a bug)."""

    name = "test-refuse"
    summary = "refuses the input"

    def run(self, module, am, ctx):
        """Refuse."""
        raise SkvmError.at(module.ops[0].location, "cannot handle this op")


@pytest.fixture(autouse=True)
def _registered(register_pass):
    for cls in (CountAnalysis, DerivedAnalysis, AppendText, Nothing, Crash, Breaks, Refuses):
        register_pass(cls)


def _manager(text: str, **inst) -> tuple[PassManager, io.StringIO]:
    dump = io.StringIO()
    manager = PassManager(parse_pipeline(text), PassContext(), Instrumentation(dump=dump, **inst))
    return manager, dump


# ---- analysis manager ---------------------------------------------------------------


def test_results_are_cached_per_module():
    """An analysis runs once per module object; a new module recomputes it."""
    module = parse_module(MODULE)
    am = AnalysisManager()
    assert am.get("test-count", module) == 2
    assert am.get("test-count", module) == 2
    assert am.run_counts == {"test-count": 1}
    other = parse_module(MODULE)  # equal, but another object
    am.get("test-count", other)
    assert am.run_counts == {"test-count": 2}


def test_dependent_analyses_share_the_cache():
    """An analysis asking for another through the manager reuses its cached result."""
    module = parse_module(MODULE)
    am = AnalysisManager()
    am.get("test-count", module)
    assert am.get("test-derived", module) == 4
    assert am.run_counts == {"test-count": 1, "test-derived": 1}


def test_preserved_analyses_policy():
    """everything/nothing/only decide what survives."""
    assert PreservedAnalyses.everything().preserves("x")
    assert not PreservedAnalyses.nothing().preserves("x")
    only = PreservedAnalyses.only("a", "b")
    assert only.preserves("a") and not only.preserves("c")


def test_invalidate_drops_what_is_not_preserved():
    """invalidate() keeps preserved results (re-keyed to the new module) and drops the rest."""
    module = parse_module(MODULE)
    new = module.with_ops(module.ops[:1])
    am = AnalysisManager()
    am.get("test-count", module)
    am.get("effects", module)
    am.invalidate(PreservedAnalyses.only("test-count"), new)
    assert am.cached("test-count") and not am.cached("effects")
    assert am.get("test-count", new) == 2  # the preserved (stale by design) result is reused
    assert am.run_counts["test-count"] == 1


def test_manager_invalidates_after_a_change():
    """After a changing pass, unpreserved analyses recompute; preserved ones do not."""
    manager, _ = _manager("test-nothing,test-append,test-nothing,test-append{keep=test-count},test-nothing")
    result = manager.run(parse_module(MODULE))
    assert len(result.ops) == 4
    # run 1 (first module), run 2 after the first append; the second append preserved it.
    assert manager.analyses.run_counts["test-count"] == 2


def test_unchanged_pass_keeps_everything():
    """A pass returning the same object keeps every cached analysis."""
    manager, _ = _manager("require<test-count>,require<effects>,test-nothing,require<test-count>")
    module = parse_module(MODULE)
    assert manager.run(module) is module
    assert manager.analyses.run_counts == {"test-count": 1, "effects": 1}


# ---- pseudo-passes ---------------------------------------------------------------------


def test_require_invalidate_print():
    """require computes, invalidate forgets, print computes if needed and prints."""
    manager, dump = _manager("require<test-count>,invalidate<test-count>,print<test-count>,print<test-count>")
    manager.run(parse_module(MODULE))
    assert manager.analyses.run_counts == {"test-count": 2}
    assert dump.getvalue() == "// test-count for @m\ncount = 2\n" * 2


# ---- instrumentation -----------------------------------------------------------------------


def _banners(text: str) -> list[str]:
    return re.findall(r"// -----// IR Dump (.*?) //----- //", text)


def test_print_before_and_after_named_passes():
    """--print-before/--print-after dump around the named passes only."""
    manager, dump = _manager(
        "test-nothing,test-append,test-nothing",
        print_before=frozenset({"test-append"}),
        print_after=frozenset({"test-append"}),
    )
    manager.run(parse_module(MODULE))
    assert _banners(dump.getvalue()) == ["Before test-append", "After test-append"]
    assert dump.getvalue().count("skill @m {") == 2


def test_print_before_all_and_after_all():
    """--print-before-all/--print-after-all dump around every pass."""
    manager, dump = _manager("test-nothing,test-append", print_before_all=True, print_after_all=True)
    manager.run(parse_module(MODULE))
    assert _banners(dump.getvalue()) == [
        "Before test-nothing", "After test-nothing", "Before test-append", "After test-append",
    ]


def test_print_changed_only_dumps_changes():
    """--print-changed dumps after passes that changed the module."""
    manager, dump = _manager("test-nothing,test-append,test-nothing", print_changed=True)
    manager.run(parse_module(MODULE))
    assert _banners(dump.getvalue()) == ["After test-append"]
    assert 'ctx.text "new" "op"' in dump.getvalue()


def test_print_generic_dumps():
    """Dumps use the generic form when asked."""
    manager, dump = _manager("test-append", print_after_all=True, print_generic=True)
    manager.run(parse_module(MODULE))
    assert '"ctx.text"() {text = "op", title = "new"} : () -> ()' in dump.getvalue()


def test_debug_pass_manager_log():
    """--debug-pass-manager logs passes, analyses and invalidations in order."""
    manager, dump = _manager("test-nothing,test-append,test-nothing", debug_pass_manager=True)
    manager.run(parse_module(MODULE))
    assert dump.getvalue().splitlines() == [
        "Running pass: test-nothing on @m",
        "Running analysis: test-count on @m",
        "Running pass: test-append on @m",
        "Invalidating analysis: test-count",
        "Running pass: test-nothing on @m",
        "Running analysis: test-count on @m",
    ]


def test_time_passes_report():
    """--time-passes records one timing per element and renders a table."""
    manager, _ = _manager("test-nothing,print<test-count>")
    manager.run(parse_module(MODULE))
    assert [t.name for t in manager.timings] == ["test-nothing", "print<test-count>"]
    report = manager.timing_report()
    assert "Pass execution timing report" in report
    assert re.search(r"^ +\d+\.\d{6} \( *\d+\.\d%\)  test-nothing$", report, re.MULTILINE)
    assert report.rstrip().endswith("(100.0%)  Total")


def test_verify_each_catches_invalid_ir():
    """--verify-each (default) reports which pass produced invalid IR."""
    manager, _ = _manager("test-break")
    with pytest.raises(SkvmError) as info:
        manager.run(parse_module(MODULE))
    assert [d.message for d in info.value.diagnostics] == [
        "'test-break' produced invalid IR: use of undefined value %nowhere"
    ]
    manager, _ = _manager("test-break", verify_each=False)
    assert len(manager.run(parse_module(MODULE)).procs()[0].regions[0].ops) == 2


def test_pass_errors_propagate_without_a_reproducer(tmp_path):
    """A located SkvmError from a pass is bad input, not a crash: no reproducer."""
    repro = tmp_path / "repro.skir"
    manager, _ = _manager("test-refuse", crash_reproducer=str(repro))
    with pytest.raises(SkvmError):
        manager.run(parse_module(MODULE))
    assert not repro.exists()


# ---- crash reproducer through the driver -------------------------------------------------


def test_crash_reproducer(tmp_path):
    """A crashing pass: exit 1, -o untouched, a reproducer with the generic IR and pipeline."""
    source = tmp_path / "in.skir"
    source.write_text(MODULE, encoding="utf-8")
    output = tmp_path / "out.skir"
    output.write_text("previous content\n", encoding="utf-8")
    repro = tmp_path / "repro.skir"
    stdout, stderr = io.StringIO(), io.StringIO()
    code = OptDriver(
        [str(source), "-passes=test-append,test-crash,test-nothing", "-o", str(output),
         "--crash-reproducer", str(repro)],
        stdout=stdout, stderr=stderr,
    ).run()
    assert code == 1
    assert output.read_text(encoding="utf-8") == "previous content\n"
    assert stdout.getvalue() == ""
    text = repro.read_text(encoding="utf-8")
    assert "// configuration: -passes=test-crash\n" in text
    assert "// full pipeline: -passes=test-append,test-crash,test-nothing\n" in text
    assert "RuntimeError: boom" in text
    ir = "\n".join(line for line in text.splitlines() if not line.startswith("//")) + "\n"
    # The IR the crashing pass received (after test-append), in generic form.
    module = parse_module(ir)
    assert len(module.ops) == 3
    assert '"ctx.text"() {text = "op", title = "new"} : () -> ()' in ir
    err = stderr.getvalue()
    assert f"note: crash reproducer written to {repro}" in err
    assert "skvm-opt: error: internal error in a pass: boom" in err
    assert "Traceback" not in err
    # Running the reproducer's pipeline on the reproducer's IR crashes the same way.
    again = OptDriver([str(repro), "-passes=test-crash", "--crash-reproducer", str(tmp_path / "r2.skir")],
                      stdout=io.StringIO(), stderr=io.StringIO()).run()
    assert again == 1 and (tmp_path / "r2.skir").exists()


def test_reproducer_path_unwritable(tmp_path):
    """An unwritable reproducer path is a note, not a second crash."""
    manager, dump = _manager("test-crash", crash_reproducer=str(tmp_path / "no" / "dir" / "r.skir"))
    with pytest.raises(RuntimeError):
        manager.run(parse_module(MODULE))
    assert "could not write the crash reproducer" in dump.getvalue()
    assert not Path(tmp_path / "no").exists()
