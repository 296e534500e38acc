"""Benchmark: emitting each target for each corpus skill (target: median ≤ 5 ms).

Run: ``.venv/bin/python benchmarks/bench_backends.py``. Imports every corpus
skill once, then times ``emit`` per (skill, target) and prints the median and
the worst median per target, in milliseconds.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from skvm.backends import BACKENDS, emit
from skvm.diagnostics import DiagnosticEngine
from skvm.frontend.importer import import_skill

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus"
REPEAT = 20


def main() -> int:
    """Time the back ends on the corpus; exit 1 when a target's median exceeds 5 ms."""
    skills = sorted(p for p in CORPUS.iterdir() if (p / "SKILL.md").is_file()) if CORPUS.is_dir() else []
    if not skills:
        print("corpus absent; nothing to measure")
        return 0
    modules = [(s, import_skill(s, DiagnosticEngine(stream=None))) for s in skills]
    worst_all = 0.0
    print(f"{'target':<12} {'median ms':>10} {'worst skill median ms':>22}")
    for target in BACKENDS:
        medians = []
        for root, module in modules:
            times = []
            for _ in range(REPEAT):
                t0 = time.perf_counter()
                emit(module, target, root, DiagnosticEngine(stream=None))
                times.append((time.perf_counter() - t0) * 1000)
            medians.append(statistics.median(times))
        worst_all = max(worst_all, statistics.median(medians))
        print(f"{target:<12} {statistics.median(medians):>10.3f} {max(medians):>22.3f}")
    return 0 if worst_all <= 5.0 else 1


if __name__ == "__main__":
    sys.exit(main())
