"""Tests of the ``parallelize`` transform: DLP, ILP, TLP, barriers, width, idempotence.

The property test generates random regions of tool and model ops with random
read/write paths and def-use chains and proves, on every output, that no two
branches of a created ``ctl.parallel`` conflict (write the same path, or read
what the other writes, or have unknown effects), that every dependent pair
keeps its order, that no op is lost or duplicated, and that a second run
changes nothing.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import skvm.ir.dialects  # noqa: F401  (registers the ops)
from skvm.diagnostics import DiagnosticEngine, SkvmError
from skvm.ir import types as T
from skvm.ir.attributes import ValueRef
from skvm.ir.operation import Module, Op, Region, Value
from skvm.ir.parser import parse_module
from skvm.ir.printer import print_module
from skvm.ir.verifier import verify
from skvm.passes.analysis.effects import local_effects, paths_overlap
from skvm.passes.base import PassContext
from skvm.passes.manager import PassManager
from skvm.passes.pipeline import parse_pipeline
from skvm.passes.transforms.parallelize import Parallelize, balanced_chunks, dlp_blocker


def run(module: Module, width: int = 4, stats: dict | None = None, remarks: bool = False):
    """Run parallelize (verifying the output); return (module, diagnostics engine)."""
    engine = DiagnosticEngine(stream=None, remark_filter="parallelize" if remarks else None)
    ctx = PassContext(diagnostics=engine, extra={} if stats is None else {"stats": stats})
    out = PassManager([Parallelize(max_width=width)], ctx).run(module)
    return out, engine


def opt(text: str, width: int = 4) -> str:
    """Parse, parallelize and print."""
    out, _ = run(parse_module(text, "t.skir"), width)
    return print_module(out)


def proc(body: str, params: str = "%files: list<path>, %t: text") -> str:
    """A one-procedure skill around ``body``."""
    return f"skill @s {{\n  proc @main({params}) {{\n{body}\n    ctl.return\n  }}\n}}\n"


# ---------------------------------------------------------------------------
# DLP
# ---------------------------------------------------------------------------

LOOP_OK = proc("""
    ctl.for_each (%files) as (%f: path) {
      %x = tool.read (%f) : text
      %y = llm.gen "summarize" (%x) : text
    }""")


def test_independent_loop_becomes_map():
    """Reads of the element and model calls do not interfere across iterations."""
    out = opt(LOOP_OK, width=3)
    assert "ctl.map (%files) {max_width = 3} as (%f: path)" in out
    assert "ctl.for_each" not in out


@pytest.mark.parametrize("body, why", [
    ('%w = tool.write "out.txt" (%t) : path', "same path (out.txt)"),
    ('%s = llm.step "do it" (%f) : text', "unknown effects"),
    ('%e = tool.exec ["make"] : text', "unknown effects"),
    ('%e = tool.exec ["gen", %f] {writes = ["out/*"]} : text', "same path (out/*)"),
])
def test_loop_with_conflicting_iterations_stays_sequential(body, why):
    """A shared write or an unknown effect keeps the loop sequential, with the reason."""
    text = proc(f"""
    ctl.for_each (%files) as (%f: path) {{
      {body}
    }}""")
    out = opt(text)
    assert "ctl.for_each" in out and "ctl.map" not in out
    module = parse_module(text, "t.skir")
    loop = next(op for op in module.walk() if op.name == "ctl.for_each")
    assert why in dlp_blocker(loop)


def _loop(body_ops, var="f"):
    return Op.build("ctl.for_each", ["files"], (), {}, [Region(body_ops, (Value(var, T.PATH),))])


def test_per_iteration_write_is_independent_but_not_with_shared_reads():
    """Writing the element itself is per iteration; reading a fixed path too could alias."""
    write_elem = Op.build("tool.write", ["t"], [Value("w", T.PATH)], {"path": ValueRef("f")})
    assert dlp_blocker(_loop([write_elem])) is None
    read_fixed = Op.build("tool.read", (), [Value("r", T.TEXT)], {"path": "config.json"})
    assert "config.json" in dlp_blocker(_loop([read_fixed, write_elem]))
    write_other = Op.build("tool.write", ["t"], [Value("w", T.PATH)], {"path": ValueRef("t")})
    assert "same path" in dlp_blocker(_loop([write_other]))


def test_return_inside_loop_blocks_dlp():
    """Leaving the procedure from an iteration is a loop-carried control dependence."""
    loop = _loop([Op.build("ctl.return")])
    assert "returns" in dlp_blocker(loop)


# ---------------------------------------------------------------------------
# ILP and TLP
# ---------------------------------------------------------------------------

READS = proc("""
    %a = tool.read "a.txt" : text
    %b = tool.read "b.txt" : text
    %c = tool.fetch "https://example.com/c" : text
    %u = llm.step "use them" (%a, %b, %c) : text""")


def test_independent_tool_calls_issue_in_one_turn():
    """Three independent reads become one ilp parallel op; results keep their names."""
    out = opt(READS)
    assert "%a, %b, %c = ctl.parallel {kind = ilp} {" in out
    assert '%a_1 = tool.read "a.txt" : text\n      ctl.yield (%a_1)' in out
    assert 'llm.step "use them" (%a, %b, %c)' in out


def test_max_width_splits_into_balanced_groups():
    """Five reads at width 2 give groups of 2, 2 and then one op alone."""
    body = "\n".join(f'    %r{i} = tool.read "f{i}" : text' for i in range(5))
    out = opt(proc(body), width=2)
    assert out.count("ctl.parallel {kind = ilp}") == 2
    assert '\n    %r4 = tool.read "f4" : text' in out
    assert balanced_chunks(list(range(5)), 4) == [[0, 1, 2], [3, 4]]
    assert balanced_chunks(list(range(9)), 4) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


def test_width_one_changes_nothing_but_loops():
    """max-width=1 allows no concurrency between calls."""
    module = parse_module(READS, "t.skir")
    out, _ = run(module, width=1)
    assert out is module


def test_conflicting_calls_keep_their_order():
    """A write and a read of the same file, or a def-use chain, stay sequential."""
    text = proc("""
    %a = tool.read "a.txt" : text
    %w = tool.write "a.txt" (%t) : path
    %b = tool.exec ["wc", %a] {reads = ["a.txt"]} : text""")
    module = parse_module(text, "t.skir")
    out, _ = run(module)
    assert out is module


def test_dependent_chains_list_schedule():
    """Two read -> exec chains: both reads in one turn, then both commands."""
    out = opt(proc("""
    %a = tool.read "a.txt" : text
    %x = tool.exec ["wc", %a] {reads = ["a.txt"]} : text
    %b = tool.read "b.txt" : text
    %y = tool.exec ["wc", %b] {reads = ["b.txt"]} : text
    %z = llm.gen "compare" (%x, %y) : text"""))
    first = out.index("%a, %b = ctl.parallel {kind = ilp}")
    second = out.index("%x, %y = ctl.parallel {kind = ilp}")
    assert first < second


TLP = proc("""
    %a1 = llm.gen "draft A" (%t) : text
    %a2 = llm.gen "polish A" (%a1) : text
    %b1 = llm.gen "draft B" (%t) : text
    %b2 = llm.gen "polish B" (%b1) : text
    %j = llm.gen "join" (%a2, %b2) : text""")


def test_independent_chains_become_threads():
    """Two model chains run as tlp branches yielding only what is used later."""
    out = opt(TLP)
    assert "%a2, %b2 = ctl.parallel {kind = tlp} {" in out
    assert '%a1_1 = llm.gen "draft A" (%t) : text' in out
    assert '%a2_1 = llm.gen "polish A" (%a1_1) : text\n      ctl.yield (%a2_1)' in out
    assert 'llm.gen "join" (%a2, %b2)' in out


def test_unknown_step_is_a_barrier():
    """An agentic step with tools splits the region: nothing moves across it."""
    body = """
    %a = tool.read "a.txt" : text
    %s = llm.step "anything" (%t){tools} : text
    %b = tool.read "b.txt" : text
    %s2 = llm.step "other" (%t){tools} : text"""
    out = opt(proc(body.replace("{tools}", "")))
    assert "ctl.parallel" not in out
    # Declared tool-free steps have known effects: two threads, reads as branches.
    out = opt(proc(body.replace("{tools}", " {tools = []}")))
    assert "ctl.parallel {kind = tlp}" in out
    assert out.count("ctl.yield") == 4


def test_remarks_and_stats():
    """Each created region is a remark at the op and a stats counter."""
    stats: dict = {}
    module = parse_module(TLP.replace("ctl.return", LOOP_OK.split("{\n", 2)[2]
                                      .rsplit("ctl.return", 1)[0] + "ctl.return"), "t.skir")
    _, engine = run(module, stats=stats, remarks=True)
    messages = [d.message for d in engine.diagnostics]
    assert any("ctl.map with max_width = 4" in m for m in messages)
    assert any("sub-tasks run as threads" in m for m in messages)
    assert all(d.loc is not None for d in engine.diagnostics)
    assert stats["parallelize.regions.dlp"] == 1
    assert stats["parallelize.regions.tlp"] == sum("threads" in m for m in messages) >= 1


def test_pipeline_options():
    """max-width parses from pipeline text and must be positive."""
    (p,) = parse_pipeline("parallelize{max-width=2}")
    assert p == Parallelize(max_width=2)
    with pytest.raises(SkvmError):
        parse_pipeline("parallelize{max-width=0}")


@pytest.mark.parametrize("text", [LOOP_OK, READS, TLP])
def test_idempotent_and_round_trips(text):
    """A second run is the identity; the output prints and parses back equal."""
    once, _ = run(parse_module(text, "t.skir"))
    again, _ = run(once)
    assert again is once
    assert parse_module(print_module(once), "o.skir") == once


# ---------------------------------------------------------------------------
# property: the branches created never interfere and dependences keep order
# ---------------------------------------------------------------------------

PATHS = ["a", "b", "c", "d/x", "d/*"]


@st.composite
def regions(draw):
    """A procedure body of 2-14 random tool/model ops tagged with ``origin``."""
    n = draw(st.integers(2, 14))
    defined: list[str] = ["t"]
    ops: list[Op] = []
    for k in range(n):
        kind = draw(st.sampled_from(["read", "write", "exec", "exec", "fetch", "gen", "step"]))
        uses = draw(st.lists(st.sampled_from(defined), max_size=2, unique=True))
        name = f"v{k}"
        origin = {"origin": f"o{k}"}
        if kind == "read":
            op = Op.build("tool.read", (), [Value(name, T.TEXT)],
                          {"path": draw(st.sampled_from(PATHS)), **origin})
        elif kind == "write":
            op = Op.build("tool.write", uses[:1] or ["t"], [Value(name, T.PATH)],
                          {"path": draw(st.sampled_from(PATHS)), **origin})
        elif kind == "exec":
            attrs_ = {"argv": ("run", *(ValueRef(u) for u in uses)), **origin}
            if draw(st.booleans()):  # declared effects (else unknown: a barrier)
                attrs_["reads"] = tuple(draw(st.lists(st.sampled_from(PATHS), max_size=2)))
                attrs_["writes"] = tuple(draw(st.lists(st.sampled_from(PATHS), max_size=2)))
            op = Op.build("tool.exec", (), [Value(name, T.TEXT)], attrs_)
        elif kind == "fetch":
            op = Op.build("tool.fetch", (), [Value(name, T.TEXT)],
                          {"url": f"https://example.com/{k}", **origin})
        else:
            extra = {} if kind == "step" else {"tools": ()}
            op = Op.build("llm.step", uses, [Value(name, T.TEXT)],
                          {"prompt": f"step {k}", **extra, **origin})
        ops.append(op)
        defined.append(name)
    ops.append(Op.build("ctl.return"))
    body = Region(ops, (Value("t", T.TEXT),))
    return Module("m", Region([Op.build("skill.proc", attributes={"sym_name": "main"},
                                        regions=[body])]))


def _positions(region: Region, prefix: tuple, out: dict) -> None:
    for i, op in enumerate(region.ops):
        origin = op.attr("origin")
        if origin is not None:
            assert origin not in out, f"{origin} duplicated"
            out[origin] = prefix + (i,)
        for r, inner in enumerate(op.regions):
            _positions(inner, prefix + (i, r), out)


def _branch_effects(region: Region, originals: dict):
    reads, writes, unknown = set(), set(), False
    for op in region.ops:
        for inner in op.walk():
            origin = inner.attr("origin")
            if origin is None:
                continue
            fx = local_effects(originals[origin])
            reads |= fx.reads
            writes |= fx.writes
            unknown |= fx.unknown
    return frozenset(reads), frozenset(writes), unknown


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(module=regions(), width=st.integers(2, 4))
def test_property_branches_never_interfere(module, width):
    """No branch pair conflicts; dependent ops keep their order; nothing lost; idempotent."""
    original_ops = module.procs()[0].regions[0].ops[:-1]
    originals = {op.attr("origin"): op for op in original_ops}
    out, _ = run(module, width)
    assert verify(out) == []
    # 1. branches of every created parallel op are pairwise independent.
    for op in out.walk():
        if op.name != "ctl.parallel":
            continue
        assert 2 <= len(op.regions) <= width
        summaries = [_branch_effects(r, originals) for r in op.regions]
        for x in range(len(summaries)):
            for y in range(x + 1, len(summaries)):
                (ra, wa, ua), (rb, wb, ub) = summaries[x], summaries[y]
                assert not (ua or ub)
                assert not paths_overlap(wa, wb), "two branches write the same path"
                assert not paths_overlap(wa, rb) and not paths_overlap(ra, wb), \
                    "a branch reads what another writes"
    # 2. every op is still there exactly once.
    pos: dict = {}
    _positions(out.procs()[0].regions[0], (), pos)
    assert set(pos) == set(originals)
    # 3. def-use and effect dependences keep their order, never in sibling branches.
    index = {op.attr("origin"): k for k, op in enumerate(original_ops)}
    defs = {op.results[0].name: op.attr("origin") for op in original_ops}
    for j_op in original_ops:
        j = j_op.attr("origin")
        fj = local_effects(j_op)
        preds = {defs[u] for u in j_op.uses() if u in defs}
        for i_op in original_ops[: index[j]]:
            fi = local_effects(i_op)
            if fi.unknown or fj.unknown or paths_overlap(fi.writes, fj.writes | fj.reads) \
                    or paths_overlap(fi.reads, fj.writes):
                preds.add(i_op.attr("origin"))
        for i in preds:
            a, b = pos[i], pos[j]
            k = next(k for k in range(min(len(a), len(b))) if a[k] != b[k])
            assert k % 2 == 0, f"{i} and {j} are dependent but in sibling branches"
            assert a[k] < b[k], f"{j} moved before {i}"
    # 4. idempotent.
    again, _ = run(out, width)
    assert again is out


# ---------------------------------------------------------------------------
# tools/pass_report.py
# ---------------------------------------------------------------------------


def test_pass_report_row_on_a_corpus_skill():
    """The report tool runs the default pipeline and reads the pass counters."""
    import importlib.util
    from pathlib import Path

    repo = Path(__file__).parents[2]
    corpus = repo / ".." / "shared" / "corpus"
    if not corpus.is_dir():
        pytest.skip("../shared/corpus is not available")
    pytest.importorskip("skvm.frontend.importer")
    spec = importlib.util.spec_from_file_location("pass_report", repo / "tools" / "pass_report.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    skill = tool.skills_of(corpus)[0]
    row = tool.run_one(skill, "claude-opus-4.6@bare-agent")
    assert row["tokens_before"] > 0 and row["tokens_after"] > 0
    assert row["ops_before"] - row["ops_after"] <= row["ops_removed"] or row["ops_removed"] == 0
    assert row["parallel"].count("/") == 2
    assert "skill" in tool.format_table([row]).split("\n")[0]
