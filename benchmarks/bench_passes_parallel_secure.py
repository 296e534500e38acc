"""Linearity of ``parallelize`` and ``secure`` on generated modules of 1k-20k ops.

Each module is one procedure of repeated blocks (independent reads, a
read -> command -> write chain, two model chains joined, a loop, an unknown
step as a barrier) plus context prose. Prints ms per run and µs per op for each
size; linear passes keep µs/op flat. Usage:
``.venv/bin/python benchmarks/bench_passes_parallel_secure.py``.
"""

from __future__ import annotations

import statistics
import sys
import time

import skvm.ir.dialects  # noqa: F401
from skvm.diagnostics import DiagnosticEngine
from skvm.ir.operation import count_ops
from skvm.ir.parser import parse_module
from skvm.passes.base import PassContext
from skvm.passes.manager import AnalysisManager
from skvm.passes.transforms.parallelize import Parallelize
from skvm.passes.transforms.secure import Secure

BLOCK = """
    %r{k}a = tool.read "in{k}/a.txt" : text
    %r{k}b = tool.read "in{k}/b.txt" : text
    %r{k}c = tool.fetch "https://example.com/{k}" : text
    %x{k} = tool.exec ["wc", "-l", "in{k}/a.txt"] {{reads = ["in{k}/a.txt"]}} : text
    %w{k} = tool.write "out{k}.txt" (%x{k}) : path
    %g{k}a = llm.gen "draft A {k}" (%r{k}a) : text
    %g{k}b = llm.gen "draft B {k}" (%r{k}b) : text
    %j{k} = llm.gen "join {k}" (%g{k}a, %g{k}b, %r{k}c) : text
    ctl.for_each (%files) as (%f{k}: path) {{
      %l{k} = tool.read (%f{k}) : text
      %s{k} = llm.gen "summarize" (%l{k}) : text
    }}
    %u{k} = llm.step "review {k}" (%j{k}) : text"""


def module_text(blocks: int) -> str:
    """A skill with ``blocks`` repeated blocks (~14 ops each)."""
    context = "\n".join(
        f'  ctx.text "Step {k}" "Run make in build {k}; do not touch ~/.ssh."' for k in range(blocks // 4)
    )
    body = "".join(BLOCK.format(k=k) for k in range(blocks))
    return (f'skill @bench {{\n  meta {{name = "bench", allowed_tools = ["Read", "Bash(wc:*)"]}}\n'
            f"{context}\n  proc @main(%files: list<path>) {{{body}\n    ctl.return\n  }}\n}}\n")


def time_pass(pass_, module, repeat: int = 3) -> float:
    """Median seconds of one run (fresh analyses each time)."""
    times = []
    for _ in range(repeat):
        ctx = PassContext(diagnostics=DiagnosticEngine(stream=None), extra={"stats": {}})
        started = time.perf_counter()
        pass_.run(module, AnalysisManager(), ctx)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    """Print the table."""
    print(f"{'ops':>7} {'parallelize ms':>15} {'µs/op':>7} {'secure ms':>10} {'µs/op':>7}")
    for target in (1_000, 2_000, 5_000, 10_000, 20_000):
        module = parse_module(module_text(max(1, target // 14)), "bench.skir")
        n = count_ops(module)
        tp = time_pass(Parallelize(), module)
        ts = time_pass(Secure(), module)
        print(f"{n:>7} {tp * 1e3:>15.1f} {tp / n * 1e6:>7.1f} {ts * 1e3:>10.1f} {ts / n * 1e6:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
