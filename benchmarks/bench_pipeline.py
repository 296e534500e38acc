"""Benchmark of the ``default`` optimization pipeline (issue 5, Performance).

One command prints:

1. the cold import cost of what ``skvm-opt`` loads before it runs a pipeline
   (a fresh interpreter, best of N);
2. per corpus skill and built-in target, the warm-process time of
   import (front end) + ``default`` pipeline + print, with the front end's
   share shown separately; then the median and p95 over the corpus per
   target against the targets (median <= 10 ms, p95 <= 50 ms);
3. the linearity table: for every pass of the pipeline (and the analyses
   it uses), the time per op on generated modules of 1k-20k ops. A linear
   pass keeps its µs/op column roughly flat.

Usage::

    .venv/bin/python benchmarks/bench_pipeline.py            # everything
    .venv/bin/python benchmarks/bench_pipeline.py --corpus   # only the corpus part
    .venv/bin/python benchmarks/bench_pipeline.py --scaling 1000 5000 20000
    .venv/bin/python benchmarks/bench_pipeline.py --per-skill   # also one row per skill

The machine may be shared: every figure is the best of N runs, and the
1-minute load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_best, probe_line  # the benchmarks' own helper

CORPUS = ROOT / ".." / "shared" / "corpus"
PIPELINE = "canonicalize,legalize,resolve-env,dce,parallelize,secure"
#: Every pass of the pipeline, in order, with the option text used on generated modules.
PASSES = ("canonicalize", "legalize", "resolve-env", "dce", "parallelize", "secure")


def load() -> str:
    """The 1-minute load average, as text."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:  # pragma: no cover - platforms without getloadavg
        return "?"


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation."""
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    k = (len(data) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


# -- cold start ---------------------------------------------------------------------------------

COLD = (
    "import time; t = time.perf_counter(); "
    "import skvm.cli.opt, skvm.passes.manager, skvm.passes.pipeline, skvm.targets.profile; "
    "print(time.perf_counter() - t)"
)


def cold_import(repeat: int = 5) -> None:
    """Print the cold import time of the tool's start-up modules (fresh interpreters)."""
    times = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip()))
    heavy = subprocess.run(
        [sys.executable, "-c", COLD.replace("print(time.perf_counter() - t)",
                                            "import sys; print(sorted(m for m in ('jsonschema', 'networkx', 'tiktoken', 'lark') if m in sys.modules))")],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    print(f"cold import of skvm-opt's start-up modules: best {min(times) * 1e3:.1f} ms "
          f"(of {repeat}); heavy modules loaded at start: {heavy}")


# -- the corpus -----------------------------------------------------------------------------------


def corpus_skills() -> list[Path]:
    """The corpus skill folders, sorted."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.iterdir() if (p / "SKILL.md").is_file())


def corpus(repeat: int, per_skill: bool, cold_memo: bool = True) -> bool:
    """Print per-target medians and p95 (and per-skill rows); return whether targets are met."""
    from skvm.diagnostics import DiagnosticEngine
    from skvm.frontend.importer import import_skill
    from skvm.ir.printer import print_module
    from skvm.passes.base import PassContext
    from skvm.passes.manager import Instrumentation, PassManager
    from skvm.passes.pipeline import parse_pipeline
    from skvm.targets.profile import builtin_targets

    skills = corpus_skills()
    if not skills:
        print(f"corpus not found at {CORPUS}: skipped")
        return True
    pipeline = parse_pipeline(PIPELINE)

    def front(skill: Path):
        return import_skill(str(skill), DiagnosticEngine(stream=None))

    from skvm.passes.transforms.secure import scan_text

    def whole(skill: Path, target: str) -> str:
        if cold_memo:
            scan_text.cache_clear()  # measure the scan, not the memo of an earlier run
        engine = DiagnosticEngine(stream=None)
        # import_skill verifies what it lowers; skvm-opt DIR does not verify it a second time.
        module = import_skill(str(skill), engine)
        ctx = PassContext(diagnostics=engine, target=target, allow_illegal=True,
                          extra={"skill_root": str(skill)})
        manager = PassManager(pipeline, ctx, Instrumentation(verify_each=True, dump=sys.stderr))
        return print_module(manager.run(module))

    # Warm up: every module imported, every cache filled once.
    for skill in skills:
        for target in builtin_targets():
            whole(skill, target)
    ok = True
    print(f"\ncorpus: {len(skills)} skills, import + verify + {PIPELINE} (verify-each) + print, "
          f"best of {repeat} interleaved rounds, secure's text memo {'cleared before each run' if cold_memo else 'kept'}, "
          f"load average {load()}")
    print(f"{'target':<34} {'median ms':>9} {'p95 ms':>7} {'max ms':>7} {'front med':>9} "
          f"{'passes med':>10} {'verdict':>8}")
    cases: dict = {("front", s.name): (lambda s=s: front(s)) for s in skills}
    for target in builtin_targets():
        cases.update({(target, s.name): (lambda s=s, t=target: whole(s, t)) for s in skills})
    best, probes = interleaved_best(cases, repeat, clock=time.perf_counter)
    print(probe_line(probes))
    front_ms = {s.name: best["front", s.name] * 1e3 for s in skills}
    rows = []
    for target in builtin_targets():
        totals = {s.name: best[target, s.name] * 1e3 for s in skills}
        values = list(totals.values())
        med, p95 = statistics.median(values), percentile(values, 0.95)
        rest = [totals[k] - front_ms[k] for k in totals]
        good = med <= 10 and p95 <= 50
        ok &= good
        print(f"{target:<34} {med:>9.2f} {p95:>7.2f} {max(values):>7.2f} "
              f"{statistics.median(front_ms.values()):>9.2f} {statistics.median(rest):>10.2f} "
              f"{'ok' if good else 'MISS':>8}")
        rows.append((target, totals))
    if per_skill:
        print(f"\n{'skill':<44} {'front ms':>8} " + " ".join(f"{t.split('@')[0][:10]:>10}" for t, _ in rows))
        for s in skills:
            print(f"{s.name:<44} {front_ms[s.name]:>8.2f} "
                  + " ".join(f"{totals[s.name]:>10.2f}" for _, totals in rows))
    return ok


# -- scaling ---------------------------------------------------------------------------------------

BLOCK = """
    %r{k}a = tool.read "in{k}/a.txt" : text
    %r{k}b = tool.read "in{k}/b.txt" : text
    %r{k}c = tool.fetch "https://example.com/{k}" : text
    %x{k} = tool.exec ["wc", "-l", "in{k}/a.txt"] {{reads = ["in{k}/a.txt"]}} : text
    %w{k} = tool.write "out{k}.txt" (%x{k}) : path
    %g{k}a = llm.gen "draft A {k}" (%r{k}a) : text
    %g{k}b = llm.gen "draft B {k}" (%r{k}b) : text
    %j{k} = llm.gen "join {k}" (%g{k}a, %g{k}b, %r{k}c) : text
    %b{k} = env.if bin "jq" {{
      %y{k} = tool.read "f{k}.txt" : text
      ctl.yield (%y{k})
    }} else {{
      ctl.yield (%j{k})
    }} : text
    ctl.for_each (%files) as (%f{k}: path) {{
      %l{k} = tool.read (%f{k}) : text
      %s{k} = llm.gen "summarize" (%l{k}) : text
    }}
    %d{k} = llm.gen "unused {k}" (%b{k}) : text
    %u{k} = llm.step "review {k}" (%j{k}) {{caps = [reason.analysis:L2]}} : text"""


def module_text(blocks: int) -> str:
    """A skill with ``blocks`` repeated blocks (~20 ops each) and module-level context."""
    top = []
    for k in range(max(1, blocks // 4)):
        top += [
            f'  resource @r{k} = "references/r{k}.md" {{kind = reference}}',
            f'  env.require pip "pkg{k}" {{version = ">=1"}}',
            f'  ctx.text "Step {k}" "Run make in build {k % 50}; do not touch ~/.ssh."',
            f'  ctx.rule must "Keep the output of step {k % 7}."',
            f'  env.if os "macos" {{\n    ctx.rule must "mac {k}"\n  }} else {{\n    ctx.rule must "linux {k % 7}"\n  }}',
        ]
    body = "".join(BLOCK.format(k=k) for k in range(blocks))
    return ('skill @bench {\n  meta {name = "bench", allowed_tools = ["Read", "Bash(wc:*)"]}\n'
            + "\n".join(top) + f"\n  proc @main(%files: list<path>) {{{body}\n    ctl.return\n  }}\n}}\n")


def scaling(sizes: list[int], repeat: int) -> None:
    """Print µs/op of every pass (on its real input: the output of the passes before it)."""
    from skvm.diagnostics import DiagnosticEngine
    from skvm.environment import Environment
    from skvm.ir.operation import count_ops
    from skvm.ir.parser import parse_module
    from skvm.ir.printer import print_module
    from skvm.passes.base import PassContext
    from skvm.passes.manager import AnalysisManager
    from skvm.passes.registry import PASSES
    from skvm.passes.transforms.secure import scan_text

    env = Environment(
        os="linux", arch="x86_64", python="3.11.7", python_packages={"pkg0": "1.0"},
        npm_packages={}, binaries={"jq": "/usr/bin/jq"}, package_managers=("pip", "apt"),
        env_vars=["HOME"], network=True,
    )
    from skvm.passes.transforms import resolve_env

    resolve_env_for = resolve_env.environment_for
    resolve_env.environment_for = lambda spec, module, ctx=None: env  # a fixed environment
    try:
        target = "qwen3.5-9b@bare-agent"
        columns = list(PASSES) + ["print"]
        print(f"\nscaling: µs per op (best of {repeat}; each pass on the output of the ones before; "
              f"target {target}), load average {load()}")
        print(f"{'ops':>7} " + " ".join(f"{c:>12}" for c in columns) + f" {'total ms':>9}")
        for size in [200] + sizes:  # the first (small) size only warms up caches
            module = parse_module(module_text(max(1, size // 20)), "bench.skir")
            n = count_ops(module)
            figures = []
            total = 0.0
            for name in PASSES:
                pass_ = PASSES[name]()

                def run(module=module, pass_=pass_):
                    scan_text.cache_clear()
                    ctx = PassContext(diagnostics=DiagnosticEngine(stream=None), target=target,
                                      allow_illegal=True, extra={"stats": {}})
                    return pass_.run(module, AnalysisManager(), ctx).module

                seconds = best_of(run, repeat)
                total += seconds
                figures.append(seconds * 1e6 / n)
                module = run()
            seconds = best_of(lambda m=module: print_module(m), repeat)
            total += seconds
            figures.append(seconds * 1e6 / n)
            if size != 200 or 200 in sizes:
                print(f"{n:>7} " + " ".join(f"{f:>12.2f}" for f in figures) + f" {total * 1e3:>9.1f}")
    finally:
        resolve_env.environment_for = resolve_env_for


def main(argv: list[str] | None = None) -> int:
    """Run the parts asked for (all by default)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", action="store_true", help="only the corpus part")
    parser.add_argument("--scaling", nargs="*", type=int, default=None, help="only scaling, at these sizes")
    parser.add_argument("--per-skill", action="store_true", help="print one row per corpus skill")
    parser.add_argument("--repeat", type=int, default=20, help="rounds (corpus) or runs (scaling)")
    parser.add_argument("--warm-memo", action="store_true",
                        help="keep secure's text memo between runs (a process compiling a skill again)")
    opts = parser.parse_args(argv)
    everything = not opts.corpus and opts.scaling is None
    ok = True
    if everything:
        cold_import()
    if everything or opts.corpus:
        ok = corpus(opts.repeat, opts.per_skill, cold_memo=not opts.warm_memo)
    if everything or opts.scaling is not None:
        scaling(opts.scaling or [1000, 2000, 5000, 10000, 20000], max(1, min(opts.repeat, 3)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
