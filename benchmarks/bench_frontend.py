"""Front-end benchmark: import + verify of the corpus, a synthetic 1 MB SKILL.md, linearity.

Run: .venv/bin/python benchmarks/bench_frontend.py
Every case is timed in rounds (each round runs every case once) and keeps its
fastest run, in CPU time of this process; see ``_timing.py`` for why.
Targets (issue 4): corpus median <= 10 ms per skill and p95 <= 50 ms (warm
process); a 1 MB SKILL.md in < 3 s; time linear in size. Also prints where
the time goes: reading the folder and frontmatter, Markdown, lowering, verify.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from skvm.diagnostics import DiagnosticEngine
from skvm.frontend.folder import load_skill_folder
from skvm.frontend.frontmatter import parse_frontmatter
from skvm.frontend.importer import import_skill
from skvm.frontend.lower import Lowering
from skvm.frontend.markdown import parse_markdown
from skvm.ir.verifier import verify
from skvm.perf import paused_gc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved_best, interleaved_samples, probe_line

#: Rounds over the corpus (each skill's best is kept; see _timing).
ROUNDS = 20
#: Rounds over the three synthetic sizes.
SYNTHETIC_ROUNDS = 7

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / ".." / "shared" / "corpus"
UNIT = """
## Section {n}

Some prose about step {n}. You MUST keep the input. See `references/guide.md`.

1. Read the input file and compute the average of column {n}.
2. Run the command:

   ```bash
   python scripts/run.py --n {n}
   ```

3. If the result is empty, explain why.

```python
import json
print(json.dumps({{"n": {n}}}))
```

| a | b |
|---|---|
| {n} | x |
"""


PHASES = ("folder+frontmatter", "markdown", "lowering", "verify")


def phase_times(folder: Path) -> list[float]:
    """CPU seconds of each of :data:`PHASES` for one import (the steps of ``import_skill``)."""
    diag = DiagnosticEngine(stream=None)
    clock = time.process_time
    started = clock()
    source = load_skill_folder(folder)
    diag.sources.add(source.display_name, source.text)
    front = parse_frontmatter(source.text, source.display_name, source.folder_name, diag)
    with paused_gc():
        parsed = clock()
        blocks = parse_markdown(front.body, source.display_name, front.body_start_line)
        marked = clock()
        module = Lowering(source, front, blocks, diag).run()
        lowered = clock()
        verify(module)
        verified = clock()
    return [parsed - started, marked - parsed, lowered - marked, verified - lowered]


def best_phases(folders: list[Path], repeat: int) -> list[float]:
    """Per phase, the sum over ``folders`` of its fastest of ``repeat`` runs."""
    totals = [0.0] * len(PHASES)
    for folder in folders:
        runs = [phase_times(folder) for _ in range(repeat)]
        totals = [total + min(run[k] for run in runs) for k, total in enumerate(totals)]
    return totals


def print_phases(label: str, seconds: list[float], unit: float, suffix: str) -> None:
    """One line: each phase's time and share of the whole."""
    whole = sum(seconds) or 1.0
    parts = "  ".join(
        f"{name} {value * unit:.{0 if unit > 1 else 3}f}{suffix} ({100 * value / whole:.0f}%)"
        for name, value in zip(PHASES, seconds)
    )
    print(f"  {label}: {parts}")


def synthetic(size: int, folder: Path) -> Path:
    """A skill folder whose SKILL.md is about ``size`` bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = ["---\nname: big\ndescription: A large synthetic skill.\n---\n\n# Big\n"]
    n = 0
    total = len(parts[0])
    while total < size:
        chunk = UNIT.format(n=n)
        parts.append(chunk)
        total += len(chunk)
        n += 1
    (folder / "SKILL.md").write_text("".join(parts), encoding="utf-8")
    return folder


def main() -> int:
    rows = []
    if CORPUS.is_dir():
        skills = sorted(p for p in CORPUS.iterdir() if (p / "SKILL.md").exists())
        for folder in skills:
            import_skill(folder)  # warm
        best, probes = interleaved_best({f.name: (lambda f=f: import_skill(f)) for f in skills}, ROUNDS)
        per_skill = {name: seconds * 1000 for name, seconds in best.items()}
        print(probe_line(probes))
        ordered = sorted(per_skill.values())
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        median = statistics.median(ordered)
        print(f"corpus: {len(ordered)} skills, median {median:.2f} ms, p95 {p95:.2f} ms, max {ordered[-1]:.2f} ms")
        for name, ms in sorted(per_skill.items(), key=lambda kv: -kv[1])[:5]:
            print(f"  {ms:8.2f} ms  {name}")
        print_phases("split, sum over the corpus", best_phases(skills, 5), 1000, " ms")
        rows.append(("corpus median (ms)", median, 10))
        rows.append(("corpus p95 (ms)", p95, 50))
    else:
        print(f"corpus absent at {CORPUS}; skipping the corpus figures")
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [250_000, 500_000, 1_000_000]
        folders = {size: synthetic(size, Path(tmp) / f"s{size}") for size in sizes}
        samples, probes = interleaved_samples(
            {size: (lambda folder=folder: import_skill(folder)) for size, folder in folders.items()},
            SYNTHETIC_ROUNDS,
        )
        seconds = {size: min(times) for size, times in samples.items()}
        print(probe_line(probes))
        for size in sizes:
            print(f"synthetic {size / 1e6:.2f} MB: {seconds[size]:.3f} s")
        print_phases("split, 1 MB", best_phases([Path(tmp) / "s1000000"], 2), 1, " s")
        rows.append(("1 MB import (s)", seconds[1_000_000], 3))
        # Linearity from the two sizes timed next to each other in the same round
        # (the host's mode rarely changes between them), median over the rounds:
        # the ratio of two best-ofs mixed modes (0.5 MB fast, 1 MB slow) and
        # moved between 1.8 and 2.4 from run to run with the code unchanged.
        paired = [big / half for big, half in zip(samples[1_000_000], samples[500_000])]
        print(f"1 MB / 0.5 MB per round: {' '.join(f'{r:.2f}' for r in paired)}"
              f" (best-of ratio {seconds[1_000_000] / seconds[500_000]:.2f})")
        rows.append(("1 MB / 0.5 MB time ratio", statistics.median(paired), 2.2))
    print()
    print(f"{'measure':<28} {'value':>10} {'target':>8}  ok")
    ok_all = True
    for name, value, target in rows:
        ok = value <= target
        ok_all &= ok
        print(f"{name:<28} {value:>10.3f} {target:>8}  {'yes' if ok else 'NO'}")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
