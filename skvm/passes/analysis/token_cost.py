"""The ``token-cost`` analysis: the tokens a harness loads for the skill.

Harnesses load skills progressively (see ``shared/skills-format.md``):

* tier 1 — the skill's ``name`` and ``description`` (from ``skill.meta``) are
  in the system prompt of every session;
* tier 2 — the body, shown when the skill is used: every ``ctx`` op's text
  (sections, rules, examples, references' mentions) and every model op's
  prompt and template;
* tier 3 — bundled resources, read only on demand: listed, not counted.

Counts come from :mod:`skvm.tokens` (cl100k_base as bundled with litellm,
offline; a chars/4 estimate when no tokenizer is available, which the printed
report states). Each op is counted on its own, so tier 2 is the sum of the
per-op counts, not a count of one concatenated string.
"""

from __future__ import annotations

import functools

import attrs

from skvm import tokens
from skvm.ir.operation import Module, Op
from skvm.passes.base import Analysis


def _prompt(op: Op) -> str:
    parts = [op.attr("prompt") or op.attr("question") or ""]
    template = op.attr("template")
    if isinstance(template, str):
        parts.append(template)
    return "\n".join(p for p in parts if p)


def _rule(op: Op) -> str:
    severity = op.attr("severity")
    word = getattr(severity, "name", "")
    return f"{word.upper()}: {op.attr('text', '')}" if word else op.attr("text", "")


def _example(op: Op) -> str:
    return f"```{op.attr('lang', '')}\n{op.attr('code', '')}\n```"


def _ref(op: Op) -> str:
    resource = op.attr("resource")
    name = getattr(resource, "name", "")
    return " ".join(x for x in (name, op.attr("when", ""), op.attr("text", "")) if x)


def _section(op: Op) -> str:
    return f"{op.attr('title', '')}\n{op.attr('text', '')}"


#: How a harness shows each kind of op to the model (op name -> text renderer).
TIER2_TEXT = {
    "ctx.text": _section,
    "ctx.rule": _rule,
    "ctx.example": _example,
    "ctx.ref": _ref,
    "llm.step": _prompt,
    "llm.gen": _prompt,
    "llm.judge": _prompt,
}


def tier2_text(op: Op) -> str | None:
    """The text a harness shows for ``op`` in the skill body (None: shows nothing)."""
    render = TIER2_TEXT.get(op.name)
    return render(op) if render is not None else None


def tier1_text(module: Module) -> str:
    """The name and description a harness keeps in every system prompt."""
    meta = module.meta
    if meta is None:
        return ""
    return "\n".join(str(meta.attr(k)) for k in ("name", "description") if meta.attr(k))


def _count(text: str) -> int:
    return _cached_count(tokens.tokenizer_name(), text)


@functools.lru_cache(maxsize=8192)
def _cached_count(tokenizer: str, text: str) -> int:
    # Duplicated context (the same rule twice) is common: count each text once.
    # The tokenizer's name is part of the key: tests switch to the estimate.
    del tokenizer
    return tokens.count_tokens(text)


@attrs.frozen
class TokenCost:
    """Token counts of a module: tiers and per op (keyed by ``id(op)``)."""

    tokenizer: str
    tier1: int
    by_op: dict[int, int]
    #: (path, op, tokens) for every op that costs tokens, in module order.
    rows: tuple[tuple[str, Op, int], ...]
    resources: int

    @property
    def tier2(self) -> int:
        """Tokens of the body shown when the skill is used."""
        return sum(n for _, _, n in self.rows)

    @property
    def total(self) -> int:
        """Tier 1 plus tier 2."""
        return self.tier1 + self.tier2

    def of(self, op: Op) -> int:
        """Tokens ``op`` costs (0 for ops the harness does not show)."""
        found = self.by_op.get(id(op))
        if found is not None:
            return found
        text = tier2_text(op)
        return _count(text) if text else 0


def _walk(module: Module):
    for i, op in enumerate(module.body.ops):
        if op.name == "skill.proc" and op.regions:
            yield from _walk_region(f"@{op.sym_name}", op.regions[0].ops)
        elif op.regions:
            yield f"#{i}", op
            yield from _walk_region(f"#{i}", (o for r in op.regions for o in r.ops), nested=True)
        else:
            yield f"#{i}", op


def _walk_region(prefix: str, ops, nested: bool = False):
    for i, op in enumerate(ops):
        path = f"{prefix}.{i}" if nested else f"{prefix}#{i}"
        yield path, op
        for r, region in enumerate(op.regions):
            yield from _walk_region(f"{path}.{r}", region.ops)


def compute_token_cost(module: Module) -> TokenCost:
    """Count the tokens of ``module``'s tiers and ops."""
    by_op: dict[int, int] = {}
    rows: list[tuple[str, Op, int]] = []
    for path, op in _walk(module):
        text = tier2_text(op)
        if not text:
            continue
        n = _count(text)
        by_op[id(op)] = n
        rows.append((path, op, n))
    t1 = tier1_text(module)
    return TokenCost(
        tokens.tokenizer_name(),
        _count(t1) if t1 else 0,
        by_op,
        tuple(rows),
        len(module.resources()),
    )


def _label(op: Op) -> str:
    if op.name in ("ctx.text",):
        return f' "{op.attr("title", "")}"'
    if op.results:
        return f" %{op.results[0].name}"
    return ""


class TokenCostAnalysis(Analysis):
    """Tokens a harness loads for the skill: tier 1, tier 2 and per op."""

    name = "token-cost"
    summary = "tokens a harness loads for the skill (tier 1, tier 2, per op), counted offline"

    def run(self, module: Module, am) -> TokenCost:
        return compute_token_cost(module)

    def print(self, result: TokenCost, module: Module) -> str:
        name = result.tokenizer
        if name == tokens.ESTIMATE_NAME:
            name += " (no tokenizer available: counts are estimates)"
        lines = [
            f"tokenizer: {name}",
            f"tier1 (name + description): {result.tier1}",
            f"tier2 (body): {result.tier2}",
        ]
        for path, op, n in result.rows:
            lines.append(f"  {path} {op.name}{_label(op)}: {n}")
        lines.append(f"tier3 (resources on demand, not counted): {result.resources}")
        lines.append(f"total (tier1 + tier2): {result.total}")
        return "\n".join(lines) + "\n"
