"""Context tokens per target for the corpus, before and after ``-passes=default``.

Tier 1 = name + description (always in context), tier 2 = the SKILL.md body
(on activation). Usage:
``.venv/bin/python tools/token_report.py [--no-passes] [--target=MODEL@HARNESS]``
(legalize in ``default`` needs a target; gpt-5.4@bare-agent unless given).
Uses :func:`skvm.tokens.count_tokens` (an estimate when no tokenizer ships).
"""

from __future__ import annotations

import sys
from pathlib import Path

from skvm.backends import BACKENDS, emit
from skvm.diagnostics import DiagnosticEngine
from skvm.frontend.importer import import_skill
from skvm.tokens import count_tokens, tokenizer_name

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus"


def tiers(bundle) -> tuple[int, int]:
    """(tier-1 tokens, tier-2 tokens) of an emitted bundle."""
    if "SKILL.md" not in bundle:
        return 0, 0
    _, head, body = bundle.text("SKILL.md").split("---\n", 2)
    import yaml

    fm = yaml.safe_load(head) or {}
    return count_tokens(f"{fm.get('name', '')}: {fm.get('description', '')}"), count_tokens(body)


def optimized(module, target: str):
    """The module after -passes=default for ``target``, or None when the pipeline cannot run."""
    try:
        from skvm.passes.base import PassContext
        from skvm.passes.manager import Instrumentation, PassManager
        from skvm.passes.pipeline import parse_pipeline

        ctx = PassContext(diagnostics=DiagnosticEngine(stream=None), target=target, env=None,
                          allow_illegal=True, extra={})
        return PassManager(parse_pipeline("default"), ctx, Instrumentation()).run(module)
    except Exception as exc:  # a skill the pipeline rejects: report it, keep going
        print(f"note: -passes=default unavailable ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def main(argv: list[str]) -> int:
    """Print the table."""
    skills = sorted(p for p in CORPUS.iterdir() if (p / "SKILL.md").is_file()) if CORPUS.is_dir() else []
    target_profile = next(
        (a.split("=", 1)[1] for a in argv if a.startswith("--target=")), "gpt-5.4@bare-agent"
    )
    totals = {t: [0, 0, 0, 0] for t in BACKENDS if t != "vm"}
    for skill in skills:
        module = import_skill(skill, DiagnosticEngine(stream=None))
        after = None if "--no-passes" in argv else optimized(module, target_profile)
        for target in totals:
            t1, t2 = tiers(emit(module, target, skill, DiagnosticEngine(stream=None)))
            totals[target][0] += t1
            totals[target][1] += t2
            if after is not None:
                a1, a2 = tiers(emit(after, target, skill, DiagnosticEngine(stream=None)))
                totals[target][2] += a1
                totals[target][3] += a2
    print(f"corpus: {len(skills)} skills; tokenizer: {tokenizer_name()}; "
          f"after = -passes=default --target={target_profile}")
    print(f"{'target':<12} {'tier1':>7} {'tier2':>8} {'tier1 opt':>10} {'tier2 opt':>10}")
    for target, (t1, t2, a1, a2) in totals.items():
        print(f"{target:<12} {t1:>7} {t2:>8} {a1:>10} {a2:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
