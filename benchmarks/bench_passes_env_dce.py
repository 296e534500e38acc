"""Scaling benchmark of resolve-env and dce on generated modules of 1k-20k ops.

Usage: ``python benchmarks/bench_passes_env_dce.py [sizes...]``. Prints, per
size, the best-of-3 wall time of each pass and the time per op; linear
passes show a flat µs/op column.
"""

from __future__ import annotations

import sys
import time

from skvm.diagnostics import DiagnosticEngine
from skvm.environment import Environment
from skvm.ir.operation import count_ops
from skvm.ir.parser import parse_module
from skvm.passes.base import PassContext
from skvm.passes.transforms.dce import eliminate
from skvm.passes.transforms.resolve_env import resolve_module

ENV = Environment(
    os="linux", arch="x86_64", python="3.11.7", python_packages={"pkg0": "1.0"},
    npm_packages={}, binaries={"jq": "/usr/bin/jq"}, package_managers=("pip", "apt"),
    env_vars=["HOME"], network=True,
)


def generate(n_ops: int) -> str:
    """A module of about ``n_ops`` ops mixing every construct the passes touch."""
    lines = ["skill @bench {", '  meta {name = "bench"}']
    blocks = max(1, n_ops // 10)
    for i in range(blocks // 4):
        lines.append(f'  resource @r{i} = "references/r{i}.md" {{kind = reference}}')
        lines.append(f'  env.require pip "pkg{i}" {{version = ">=1"}}')
        lines.append(f'  ctx.text "T{i}" "paragraph {i % 50}"')
        lines.append(f'  env.if os "macos" {{\n    ctx.rule must "mac {i}"\n  }} else {{\n    ctx.rule must "linux {i % 7}"\n  }}')
    lines.append("  proc @main(%t: text) -> text {")
    for i in range(blocks):
        lines += [
            f'    %a{i} = tool.exec ["jq", "."] : text',
            f'    %g{i} = llm.gen "g{i}" (%a{i}) : text',
            f'    %j{i} = llm.judge "j{i}" (%g{i}) : bool',
            f'    %r{i} = env.if bin "jq" {{',
            f'      %x{i} = tool.read "f{i}.txt" : text',
            f"      ctl.yield (%x{i})",
            "    } else {",
            "      ctl.yield (%t)",
            "    } : text",
            f'    %k{i} = llm.step "s{i}" (%r{i}) : text',
        ]
    lines += ["    ctl.return (%t)", "  }", "}"]
    return "\n".join(lines) + "\n"


def best_of(fn, repeat: int = 3) -> float:
    """The best wall time of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(sizes: list[int]) -> None:
    """Print the timing table."""
    print(f"{'ops':>7} {'resolve-env ms':>15} {'µs/op':>7} {'dce ms':>9} {'µs/op':>7}")
    for size in sizes:
        module = parse_module(generate(size), "bench.skir")
        n = count_ops(module)
        ctx = PassContext(diagnostics=DiagnosticEngine(stream=None))
        t_env = best_of(lambda: resolve_module(module, ENV, ctx))
        resolved, _ = resolve_module(module, ENV, ctx)
        t_dce = best_of(lambda: eliminate(resolved, ctx))
        print(f"{n:>7} {t_env * 1e3:>15.1f} {t_env * 1e6 / n:>7.1f} {t_dce * 1e3:>9.1f} {t_dce * 1e6 / n:>7.1f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 5000, 10000, 20000])
