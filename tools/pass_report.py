"""What the default pipeline does to each corpus skill, per built-in target.

For every skill of ``../shared/corpus`` (relative to the repo root) and every
built-in target (:func:`skvm.targets.profile.builtin_targets`), it imports the
skill, runs ``-passes=default`` and prints one row: tokens before and after
(the ``token-cost`` analysis, counted with :func:`skvm.tokens.count_tokens`),
ops removed, ops legalized by strategy, parallel regions created (dlp/ilp/tlp)
and security findings, all read from the stats counters the passes put in
``ctx.extra["stats"]``. Diagnostics are not printed (legalization errors are
counted in the ``illegal`` column).

Usage: ``.venv/bin/python tools/pass_report.py [--corpus DIR] [--target T ...] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from skvm.diagnostics import DiagnosticEngine, SkvmError
from skvm.ir.operation import Module, count_ops

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / ".." / "shared" / "corpus"

#: Report columns: header -> how to read it from a row.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("skill", "skill"), ("target", "target"), ("tok.before", "tokens_before"),
    ("tok.after", "tokens_after"), ("ops.removed", "ops_removed"), ("legalized", "legalized"),
    ("illegal", "illegal"), ("par(dlp/ilp/tlp)", "parallel"), ("findings", "findings"),
)


def _tokens(module: Module) -> int:
    from skvm.passes.analysis.token_cost import compute_token_cost

    return compute_token_cost(module).total


def run_one(skill: Path, target: str, pipeline: str = "default") -> dict[str, Any]:
    """Import ``skill``, run ``pipeline`` for ``target``; return the report row."""
    from skvm.frontend.importer import import_skill
    from skvm.passes.base import PassContext
    from skvm.passes.manager import Instrumentation, PassManager
    from skvm.passes.pipeline import parse_pipeline

    engine = DiagnosticEngine(stream=None)
    module = import_skill(skill, engine)
    stats: dict[str, int] = {}
    ctx = PassContext(diagnostics=engine, target=target, allow_illegal=True,
                      extra={"stats": stats, "skill_root": str(skill)})
    manager = PassManager(parse_pipeline(pipeline), ctx, Instrumentation(crash_reproducer=None))
    error = ""
    try:
        after = manager.run(module)
    except SkvmError as exc:
        after, error = module, exc.diagnostics[0].message
    legalized = {k.rsplit(".", 1)[1]: v for k, v in sorted(stats.items())
                 if k.startswith("legalize.ops-legalized.")}
    return {
        "skill": skill.name,
        "target": target,
        "tokens_before": _tokens(module),
        "tokens_after": _tokens(after),
        "ops_before": count_ops(module),
        "ops_after": count_ops(after),
        "ops_removed": max(0, count_ops(module) - count_ops(after)),
        "legalized": ",".join(f"{k}={v}" for k, v in legalized.items()) or "-",
        "illegal": stats.get("legalize.ops-illegal", 0),
        "parallel": "/".join(str(stats.get(f"parallelize.regions.{k}", 0))
                             for k in ("dlp", "ilp", "tlp")),
        "findings": stats.get("secure.findings", 0),
        "error": error,
        "stats": dict(sorted(stats.items())),
    }


def skills_of(corpus: Path) -> list[Path]:
    """The skill folders of ``corpus``, sorted."""
    return sorted(p for p in corpus.iterdir() if (p / "SKILL.md").is_file())


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width text table with a totals line."""
    header = [h for h, _ in COLUMNS]
    body = [[str(r[k]) for _, k in COLUMNS] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in body]
    before = sum(r["tokens_before"] for r in rows)
    after = sum(r["tokens_after"] for r in rows)
    change = 100.0 * (after - before) / before if before else 0.0
    lines.append(f"total: {len(rows)} runs, tokens {before} -> {after} ({change:+.1f}%), "
                 f"ops removed {sum(r['ops_removed'] for r in rows)}, "
                 f"parallel regions {sum(sum(map(int, r['parallel'].split('/'))) for r in rows)}, "
                 f"illegal ops {sum(r['illegal'] for r in rows)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the report; exit 1 when the corpus or the front end is missing."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(CORPUS), help="folder of skill folders")
    parser.add_argument("--target", action="append", help="targets (default: all built-in)")
    parser.add_argument("--pipeline", default="default", help="pass pipeline")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    opts = parser.parse_args(argv)
    corpus = Path(opts.corpus)
    if not corpus.is_dir():
        sys.stderr.write(f"pass_report: error: no corpus at {opts.corpus}\n")
        return 1
    from skvm.targets.profile import builtin_targets

    targets = opts.target or builtin_targets()
    rows = [run_one(s, t, opts.pipeline) for s in skills_of(corpus) for t in targets]
    if opts.json:
        sys.stdout.write(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    else:
        sys.stdout.write(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
