"""Benchmark of the SkIR core: parse, verify, print, pass-manager overhead, memory.

Run with ``.venv/bin/python benchmarks/bench_core.py`` (``--quick`` for a
smaller run). Generates canonical modules of 10,000 and 20,000 ops (every
dialect, nested regions), then measures throughput in ops per second, the
pass-manager overhead of a five-pass pipeline that changes nothing (total
time minus the time spent inside the passes), peak memory while parsing and
verifying (tracemalloc) and how the time grows from 10k to 20k ops. Prints a
table and exits 1 when a target of issue 3 is missed.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import attrs

from skvm.ir.operation import Module, count_ops
from skvm.ir.parser import parse_module
from skvm.ir.printer import print_module
from skvm.ir.verifier import verify
from skvm.passes.base import ModulePass, PassContext
from skvm.passes.manager import PassManager

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_best  # the benchmarks' own helper

#: Target figures (issue 3): name -> (comparison, bound).
TARGETS = {
    "parse ops/s": (">=", 10_000),
    "verify ops/s": (">=", 50_000),
    "print ops/s": (">=", 50_000),
    "pass-manager overhead ms": ("<", 5.0),
    "peak memory MB": ("<", 100.0),
    "20k/10k time ratio": ("<", 2.2),
}

#: One procedure body (29 ops counting nested ones); ``{i}`` makes names unique.
_BLOCK = """\
  proc @p{i}(%task: text, %files: list<path>) -> text {{
    %a = tool.exec ["python", @script, %task] {{reads = ["in{i}.pdf"], writes = ["out{i}/*"]}} : text
    %b = tool.exec ["cat a{i} | sort"] {{shell}} : text
    %c = tool.script @script ["--all"] : text
    %d = tool.read "notes{i}.md" : text
    %e = tool.write "out{i}.csv" (%d) : path
    %f = tool.fetch "https://example.com/{i}" : text
    %g = llm.step "do X // not a comment \\"{i}\\" 中文" (%a, %task) {{caps = [reason.analysis:L2]}} : json
    %h = llm.gen "summarize" (%g) : text
    %ok = llm.judge "is it done?" (%h) : bool
    %r = ctl.if (%ok) {{
      ctl.yield (%h)
    }} else {{
      ctl.yield (%a)
    }} : text
    ctl.for_each (%files) as (%f1: path) {{
      %z1 = tool.read (%f1) : text
    }}
    %outs = ctl.map (%files) {{max_width = 4}} as (%f2: path) {{
      %o = llm.gen "x" (%f2) : text
      ctl.yield (%o)
    }} : list<text>
    %x, %y = ctl.parallel {{kind = tlp}} {{
      %p = llm.gen "p" : text
      ctl.yield (%p)
    }} {{
      %q = llm.gen "q" : text
      ctl.yield (%q)
    }} : text, text
    %z = ctl.call @helper (%x) : text
    check.exists (%e)
    check.schema (%g) {{schema = "{{}}"}}
    check.cmd ["test", "-s", "out{i}.csv"]
    %s = jit.solid ["python", "x.py", %a] (%a) {{guard = "g", hits = 3}} {{
      %s0 = llm.step "fallback" (%a) : text
      ctl.yield (%s0)
    }} : text
    ctl.return (%r)
  }}
"""

_HEADER = """\
skill @bench {
  meta {description = "generated benchmark module", name = "bench"}
  resource @script = "scripts/extract.py" {kind = script}
  resource @forms = "forms.md" {kind = reference}
  env.require pip "pypdf" {version = ">=4"}
  ctx.text "Overview" "prose"
  ctx.rule must "Never overwrite the input."
  ctx.ref @forms {when = "forms"}
  proc @helper(%i: text) -> text {
    ctl.return (%i)
  }
"""


def generate(n_ops: int) -> str:
    """Text of a canonical, valid module with about ``n_ops`` ops."""
    per_block = 29
    blocks = max(1, (n_ops - 8) // per_block)
    return _HEADER + "".join(_BLOCK.format(i=i) for i in range(blocks)) + "}\n"


#: Seconds spent inside NoOp.run during one pipeline run.
_INSIDE: list[float] = []


@attrs.frozen
class NoOp(ModulePass):
    """A pass that changes nothing (to measure the manager, not the pass)."""

    name = "bench-noop"
    summary = "does nothing"

    def run(self, module, am, ctx):
        """Return the module unchanged, recording the time spent here."""
        start = time.perf_counter()
        result = self.unchanged(module)
        _INSIDE.append(time.perf_counter() - start)
        return result


#: The clock: CPU time of this process. The machine is shared (other jobs
#: run beside the benchmark), and CPU time is what our code costs.
CLOCK = time.process_time


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """The smallest CPU time of ``repeat`` runs of ``fn`` and its last result."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        # Free the previous run's result before the clock starts: deallocating
        # a 20k-op module is not part of parsing the next one.
        result = None
        gc.collect()
        start = CLOCK()
        result = fn()
        best = min(best, CLOCK() - start)
    return best, result


def measure(n_ops: int, repeat: int) -> dict[str, float]:
    """Measure one module size; return figures keyed like :data:`TARGETS`."""
    text = generate(n_ops)
    t_parse, module = best_of(lambda: parse_module(text, "bench.skir"), repeat)
    assert isinstance(module, Module)
    ops = count_ops(module)
    t_verify, problems = best_of(lambda: verify(module), repeat)
    assert not problems, problems[:3]
    t_print, printed = best_of(lambda: print_module(module), repeat)
    assert printed == text, "the generated module is not canonical"

    # Pass-manager overhead: five passes that change nothing; each pass body
    # records its own time, the rest of the pipeline's wall time is overhead.
    def run_pipeline() -> float:
        manager = PassManager([NoOp() for _ in range(5)], PassContext())
        _INSIDE.clear()
        start = time.perf_counter()
        manager.run(module)
        return time.perf_counter() - start - sum(_INSIDE)

    overheads = sorted(run_pipeline() for _ in range(max(5, repeat)))
    overhead = overheads[len(overheads) // 2]

    gc.collect()
    tracemalloc.start()
    parsed = parse_module(text, "bench.skir")
    verify(parsed)
    print_module(parsed)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del parsed
    return {
        "ops": ops,
        "parse s": t_parse,
        "parse ops/s": ops / t_parse,
        "verify ops/s": ops / t_verify,
        "print ops/s": ops / t_print,
        "pass-manager overhead ms": overhead * 1000,
        "peak memory MB": peak / 1e6,
        "total s": t_parse + t_verify + t_print,
    }


def interleaved_ratio(small: int, large: int, repeat: int) -> float:
    """The large/small ratio of parse + verify + print CPU time, sizes run in alternation.

    The machine's speed drifts by tens of percent over a minute; timing the
    two sizes in alternation exposes both to the same drift, where timing
    one size after the other would put the drift into the ratio.
    """
    def run(text: str) -> None:
        module = parse_module(text, "bench.skir")
        verify(module)
        print_module(module)

    texts = {n: generate(n) for n in (small, large)}
    best, _ = interleaved_best(
        {n: (lambda text=text: run(text)) for n, text in texts.items()}, repeat, CLOCK, collect=True
    )
    return best[large] / best[small]


def _meets(value: float, rule: tuple[str, float]) -> bool:
    op, bound = rule
    return value >= bound if op == ">=" else value < bound


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, return 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (best is kept)")
    parser.add_argument("--quick", action="store_true", help="1,000 and 2,000 ops, one run")
    opts = parser.parse_args(argv)
    small, large = (1_000, 2_000) if opts.quick else (10_000, 20_000)
    repeat = 1 if opts.quick else opts.repeat
    first = measure(small, repeat)
    second = measure(large, repeat)
    ratio = interleaved_ratio(small, large, repeat)
    figures = dict(first)
    figures["20k/10k time ratio"] = ratio
    figures["peak memory MB"] = first["peak memory MB"]
    rows = [
        ("ops in module", f"{first['ops']:,}", f"{second['ops']:,}", "", ""),
    ]
    for key, rule in TARGETS.items():
        a = first.get(key, ratio)
        b = second.get(key, ratio)
        ok = _meets(figures[key], rule)
        fmt = "{:,.0f}" if "ops/s" in key else "{:.2f}"
        rows.append((key, fmt.format(a), fmt.format(b), f"{rule[0]} {rule[1]:,}", "ok" if ok else "MISSED"))
    widths = [max(len(r[i]) for r in rows + [("figure", "10k", "20k", "target", "")]) for i in range(5)]
    header = ("figure", f"{small // 1000}k", f"{large // 1000}k", "target", "")
    for row in [header] + rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    missed = [k for k, rule in TARGETS.items() if not _meets(figures[k], rule)]
    return 1 if missed and not opts.quick else 0


if __name__ == "__main__":
    sys.exit(main())
