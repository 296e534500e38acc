"""The ``dce`` transform: dead-instruction elimination, where prompt tokens are saved.

Rules, applied in this order (the last four until nothing changes):

1. **Unreachable procedures**: a procedure other than ``@main`` that no
   ``ctl.call`` (or other symbol use) reachable from ``@main`` or from the
   module level names is removed. Without a ``@main`` every procedure stays.
2. **Dead ops**: in one backwards walk per procedure, an op is removed when
   none of its results is used and it has no effect that matters: ``llm.gen``
   and ``llm.judge`` (a model call without tools only costs tokens and time,
   so an unused answer is dead), ``tool.read`` (reading changes nothing) and
   any op with the ``PURE`` trait and results. Control-flow ops
   (``ctl.if``, ``ctl.for_each``, ``ctl.map``, ``ctl.parallel``, ``env.if``)
   whose results are all unused lose those results and their ``ctl.yield``
   operands; when every region is then empty the op goes too (a branch folded
   away). ``llm.step``, commands, writes, fetches, checks and calls stay.
3. **Orphaned context**: a ``ctx.*`` op with a ``for`` attribute (a string or
   list of strings: ``"%value"``, ``"@symbol"`` or a step id matched against
   ops' ``id`` attribute) serves only those anchors; when none exists any
   more, it goes. See ``docs/passes/dce.md``.
4. **Duplicated context**: the same ``ctx.text`` paragraph, ``ctx.rule``
   (severity and text), ``ctx.example`` (language and code) or ``ctx.ref``
   seen again where an earlier copy is visible (module level, or an
   enclosing region) is removed; whitespace is normalised for prose.
5. **Unreferenced resources**: a ``reference`` resource no op names
   (``ctx.ref``, ``tool.read``, …) goes; a ``script`` also stays when a
   string of the module mentions its path or file name or when it sits next
   to a kept script with the same importable extension (``.py``, ``.js``, …); ``asset``
   and ``other`` resources always stay (scripts open them by path).
6. Module-level ``env.if`` ops left with empty branches go.

Each removal is a remark (``-Rpass=dce``) with the tokens it saves; counters
``dce.ops-removed`` and ``dce.tokens-saved`` (and per rule) go to
``ctx.extra["stats"]``.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable

import attrs

from skvm.ir.attributes import Keyword
from skvm.ir.operation import Module, Op, Region, Trait
from skvm.passes.base import ModulePass, PassContext, PassResult
from skvm.passes.irutil import attr_strings, has_trait, symbol_uses, value_uses, walk

PASS = "dce"

#: Ops with results and no effect worth keeping once the results are unused.
DEAD_WHEN_UNUSED = frozenset({"llm.gen", "llm.judge", "tool.read"})
#: Control-flow ops that may lose unused results and vanish when empty.
CONTROL_OPS = frozenset({"ctl.if", "ctl.for_each", "ctl.map", "ctl.parallel", "env.if"})
#: Attributes whose text a harness loads into the prompt (token accounting).
TEXT_ATTRIBUTES = ("title", "text", "code", "prompt", "question", "when", "description")
#: Script extensions whose files other scripts of the same folder may import.
IMPORTABLE_EXTENSIONS = frozenset({"py", "js", "mjs", "cjs", "ts", "rb", "pl"})
#: Resource kinds that stay even when nothing in the IR names them.
ALWAYS_KEPT_KINDS = frozenset({"asset", "other"})


def _normalize_space(text: str) -> str:
    r"""``text`` with every run of whitespace one space, stripped.

    The same as ``re.sub(r"\s+", " ", text).strip()`` (``str.split`` and
    ``\s`` agree on what is whitespace) at a fifth of the cost on long
    paragraphs.
    """
    return " ".join(text.split())


@functools.cache
def _counter() -> Callable[[str], int]:
    try:
        from skvm.tokens import count_tokens
    except ImportError:  # pragma: no cover - tokens.py ships with skvm
        return lambda text: len(text) // 4
    return count_tokens


def op_tokens(op: Op) -> int:
    """Prompt tokens an op (and what it contains) costs a harness."""
    texts = []
    for inner in walk((op,)):
        for key in TEXT_ATTRIBUTES:
            value = inner.attr(key)
            if isinstance(value, str):
                texts.append(value)
    if op.name == "skill.resource" and isinstance(op.attr("size"), int):
        # A reference file's content is loaded on demand: ~4 bytes a token.
        return op.attr("size") // 4
    return _counter()("\n".join(texts)) if texts else 0


def _describe(op: Op) -> str:
    if op.results:
        return f"{op.name} " + ", ".join(f"%{v.name}" for v in op.results)
    if op.sym_name:
        return f"{op.name} @{op.sym_name}"
    for key in ("title", "text", "code"):
        value = op.attr(key)
        if isinstance(value, str):
            short = _normalize_space(value)
            return f"{op.name} \"{short[:40]}{'…' if len(short) > 40 else ''}\""
    return op.name


@attrs.frozen
class _TopRefs:
    """The symbols a module-level op and the ops nested in it use (see :meth:`_Run.top_refs`)."""

    #: The op these are of (held so that its ``id`` stays its own while memoized).
    op: Op
    #: ``@x`` used by the ops other than ``skill.resource``.
    symbols: frozenset[str]
    #: ``@x`` used by ``skill.resource`` ops.
    resource_symbols: frozenset[str]


@attrs.define
class _Run:
    """The state of one dce run: what was removed, for remarks and stats.

    It also memoizes, per op object, what the rules look up about an op:
    the fixed-point loop of :func:`eliminate` revisits every op each round,
    and the ops a round did not touch are the same (immutable) objects, so
    their context keys, references and strings need not be computed again.
    Entries hold the op they describe, so an ``id`` is never reused while
    the run lasts.
    """

    ctx: PassContext
    counts: Counter = attrs.field(factory=Counter)
    _context_keys: dict[int, tuple[Op, tuple | None]] = attrs.field(factory=dict)
    _top_refs: dict[int, _TopRefs] = attrs.field(factory=dict)
    _top_strings: dict[int, tuple[Op, list[str]]] = attrs.field(factory=dict)
    #: The module-level ops (other than resources) the last string blob was built
    #: from, that blob, and which paths were found in it.
    _blob_of: tuple[tuple[Op, ...], str, dict[str, bool]] | None = None

    def context_key(self, op: Op) -> tuple | None:
        """:func:`_context_key` of ``op``, computed once per op."""
        found = self._context_keys.get(id(op))
        if found is None:
            found = self._context_keys[id(op)] = (op, _context_key(op))
        return found[1]

    def top_refs(self, op: Op) -> _TopRefs:
        """The symbols module-level ``op`` and its nested ops use, computed once per op."""
        found = self._top_refs.get(id(op))
        if found is None:
            symbols: set[str] = set()
            resource_symbols: set[str] = set()
            for inner in walk((op,)):
                (resource_symbols if inner.name == "skill.resource" else symbols).update(
                    symbol_uses(inner)
                )
            found = self._top_refs[id(op)] = _TopRefs(
                op, frozenset(symbols), frozenset(resource_symbols)
            )
        return found

    def _strings(self, op: Op) -> list[str]:
        """Every string of module-level ``op`` and its nested ops but resources, in walk order."""
        found = self._top_strings.get(id(op))
        if found is None:
            strings = [
                t
                for inner in walk((op,))
                if inner.name != "skill.resource"
                for t in attr_strings(inner)
            ]
            found = self._top_strings[id(op)] = (op, strings)
        return found[1]

    def _blob(self, module: Module) -> tuple[str, dict[str, bool]]:
        """The strings of ``module`` outside resources, joined, and the answers found in them.

        Built again only when the module-level ops changed since the last one.
        """
        tops = tuple(op for op in module.body.ops if op.name != "skill.resource" or op.regions)
        cached = self._blob_of
        if (
            cached is None
            or len(cached[0]) != len(tops)
            or any(a is not b for a, b in zip(cached[0], tops))
        ):
            text = "\n".join(t for op in tops for t in self._strings(op))
            cached = self._blob_of = (tops, text, {})
        return cached[1], cached[2]

    def mention_finder(self, module: Module) -> Callable[[str], bool]:
        """A test: does a string of ``module`` (not a resource's) contain a path or its file name?

        The text is joined on the first question (most skills have no
        unreferenced script, so none is asked).
        """
        answers: dict[str, bool] | None = None
        text = ""

        def mentioned(path: str) -> bool:
            nonlocal answers, text
            if answers is None:
                text, answers = self._blob(module)
            hit = answers.get(path)
            if hit is None:
                base = path.rsplit("/", 1)[-1]
                hit = answers[path] = path in text or (bool(base) and base in text)
            return hit

        return mentioned

    def removed(self, op: Op, rule: str, why: str) -> None:
        n_ops = sum(1 for _ in walk((op,)))
        tokens = op_tokens(op)
        self.counts["ops-removed"] += n_ops
        self.counts["tokens-saved"] += tokens
        self.counts[rule] += n_ops
        self.ctx.diagnostics.remark(
            PASS, f"removed {_describe(op)}: {why} (saves ~{tokens} tokens)", op.location
        )


# -- 1. unreachable procedures -----------------------------------------------------------


def remove_unreachable_procs(module: Module, run: _Run) -> Module:
    """Drop procedures no call reachable from @main or the module level names."""
    procs = {op.sym_name: op for op in module.procs()}
    if "main" not in procs or len(procs) == 1:
        return module  # no @main, or nothing but @main: every procedure stays
    # Reachability is a set: the order in which symbols are found does not matter.
    work = ["main"]
    for op in module.body.ops:
        if op.name != "skill.proc":
            refs = run.top_refs(op)
            work += [s for s in (*refs.symbols, *refs.resource_symbols) if s in procs]
    seen: set[str] = set()
    while work:
        name = work.pop()
        if name in seen:
            continue
        seen.add(name)
        refs = run.top_refs(procs[name])
        work += [s for s in (*refs.symbols, *refs.resource_symbols) if s in procs and s not in seen]
    if len(seen) == len(procs):
        return module
    kept = []
    for op in module.body.ops:
        if op.name == "skill.proc" and op.sym_name not in seen:
            run.removed(op, "procs-removed", "no ctl.call reaches it")
            continue
        kept.append(op)
    return module.with_ops(kept)


# -- 2. dead ops ---------------------------------------------------------------------------


def _count_uses(region: Region, counts: Counter) -> None:
    for inner in walk(region.ops):
        for name in value_uses(inner):
            counts[name] += 1


def _is_dead_leaf(op: Op) -> bool:
    """Whether ``op`` may go once its results are unused (regions are handled apart)."""
    if op.regions:
        return False
    if op.name in DEAD_WHEN_UNUSED:
        return True
    return bool(op.results) and has_trait(op, Trait.PURE) and not has_trait(op, Trait.CONTEXT)


def _strip_yield(region: Region, counts: Counter) -> Region:
    """Drop the region's trailing ctl.yield (its values are not wanted)."""
    if not region.ops or region.ops[-1].name != "ctl.yield":
        return region
    y = region.ops[-1]
    if not y.operands and len(region.ops) > 1:
        return region
    for name in value_uses(y):
        counts[name] -= 1
    return region.with_ops(region.ops[:-1])


def _sweep(region: Region, counts: Counter, run: _Run) -> Region:
    """Remove dead ops of ``region`` walking backwards (users before definitions)."""
    kept: list[Op] = []
    for op in reversed(region.ops):
        unused = all(counts[v.name] <= 0 for v in op.results)
        if unused and _is_dead_leaf(op):
            for name in value_uses(op):
                counts[name] -= 1
            run.removed(op, "dead-ops", "its result is never used" if op.results else "it has no result")
            continue
        if op.name in CONTROL_OPS and unused:
            original = op
            regions = [_strip_yield(r, counts) for r in op.regions]
            if op.results:
                op = attrs.evolve(op, results=(), regions=tuple(regions))
            else:
                op = op.with_regions(regions)
            op = op.with_regions([_sweep(r, counts, run) for r in op.regions])
            if all(not r.ops for r in op.regions):
                for name in value_uses(op):
                    counts[name] -= 1
                run.removed(original, "dead-ops", "its results are unused and its branches empty")
                continue
            if original.results:
                run.ctx.diagnostics.remark(
                    PASS, f"dropped the unused results of {_describe(original)}", op.location
                )
        elif op.regions:
            op = op.with_regions([_sweep(r, counts, run) for r in op.regions])
        kept.append(op)
    kept.reverse()
    return region.with_ops(kept)


def remove_dead_ops(module: Module, run: _Run) -> Module:
    """Dead-op elimination in every procedure (linear: one count, one backwards walk)."""
    new_ops = []
    for op in module.body.ops:
        if op.name == "skill.proc" and op.regions:
            counts: Counter = Counter()
            _count_uses(op.regions[0], counts)
            op = op.with_regions([_sweep(op.regions[0], counts, run)])
        new_ops.append(op)
    return module.with_ops(new_ops)


# -- 3./4. orphaned and duplicated context ---------------------------------------------------


def _anchors(module: Module) -> tuple[set[str], set[str], set[str]]:
    """Value names, symbols and step ids that exist in ``module``."""
    values: set[str] = set()
    ids: set[str] = set()
    for op in walk(module.body.ops):
        for v in op.results:
            values.add(v.name)
        for region in op.regions:
            values.update(a.name for a in region.args)
        step_id = op.attr("id")
        if isinstance(step_id, str):
            ids.add(step_id)
    return values, set(module.symbols()), ids


def _anchor_alive(anchor: str, values: set[str], symbols: set[str], ids: set[str]) -> bool:
    if anchor.startswith("%"):
        return anchor[1:] in values
    if anchor.startswith("@"):
        return anchor[1:] in symbols
    return anchor.lstrip("#") in ids


def _context_key(op: Op) -> tuple | None:
    name = op.name
    if name == "ctx.text":
        return (name, _normalize_space(str(op.attr("text", ""))))
    if name == "ctx.rule":
        severity = op.attr("severity")
        text = _normalize_space(str(op.attr("text", "")))
        return (name, getattr(severity, "name", str(severity)), text)
    if name == "ctx.example":
        return (name, str(op.attr("lang", "")), str(op.attr("code", "")).strip())
    if name == "ctx.ref":
        ref = op.attr("resource")
        return (name, getattr(ref, "name", str(ref)), str(op.attr("when", "")))
    return None


def clean_context(module: Module, run: _Run) -> Module:
    """Remove context whose ``for`` anchors are gone and context seen before."""
    # The anchors of ``module`` (as it was on entry), collected on first use:
    # most modules have no ``for`` attribute at all.
    found_anchors: list[tuple[set[str], set[str], set[str]]] = []
    seen: dict[tuple, set[tuple]] = {}

    def keep(op: Op, path: tuple) -> bool:
        anchors = op.attr("for")
        if anchors is not None:
            items = (anchors,) if isinstance(anchors, str) else tuple(a for a in anchors if isinstance(a, str))
            if items:
                if not found_anchors:
                    found_anchors.append(_anchors(module))
                values, symbols, ids = found_anchors[0]
                if not any(_anchor_alive(a, values, symbols, ids) for a in items):
                    why = f"what it was for ({', '.join(items)}) is gone"
                    run.removed(op, "context-removed", why)
                    return False
        key = run.context_key(op)
        if key is None:
            return True
        paths = seen.setdefault(key, set())
        if any(path[:k] in paths for k in range(len(path) + 1)):
            run.removed(op, "context-deduplicated", "the same context appears earlier")
            return False
        paths.add(path)
        return True

    def visit(region: Region, path: tuple) -> Region:
        out = []
        for i, op in enumerate(region.ops):
            if has_trait(op, Trait.CONTEXT) and op.name != "skill.meta":
                if keep(op, path):
                    out.append(op)
                continue
            if op.regions:
                op = op.with_regions([visit(r, path + ((i, k),)) for k, r in enumerate(op.regions)])
            out.append(op)
        return region.with_ops(out)

    # Module-level context first: it is visible everywhere, so it is the copy to keep.
    top = [i for i, op in enumerate(module.body.ops) if op.name != "skill.proc"]
    procs = [i for i, op in enumerate(module.body.ops) if op.name == "skill.proc"]
    new_ops = list(module.body.ops)
    for indexes in (top, procs):
        for i in indexes:
            op = new_ops[i]
            if has_trait(op, Trait.CONTEXT) and op.name != "skill.meta":
                new_ops[i] = op if keep(op, ()) else None
            elif op.regions:
                new_ops[i] = op.with_regions(
                    [visit(r, ((i, k),)) for k, r in enumerate(op.regions)]
                )
    return module.with_ops([op for op in new_ops if op is not None])


# -- 5. resources ----------------------------------------------------------------------------


def remove_unused_resources(module: Module, run: _Run) -> Module:
    """Drop resources no op names (see the module docstring for the per-kind rules)."""
    resources = module.resources()
    if not resources:
        return module
    used: set[str] = set()
    for op in module.body.ops:
        used.update(run.top_refs(op).symbols)

    def kind(op: Op) -> str:
        k = op.attr("kind")
        return k.name if isinstance(k, Keyword) else str(k)

    def folder_ext(path: str) -> tuple[str, str]:
        folder, _, base = path.rpartition("/")
        return folder, base.rpartition(".")[2] if "." in base else ""

    mentioned = run.mention_finder(module)

    kept_script_homes = {
        folder_ext(str(r.attr("path", "")))
        for r in resources
        if kind(r) == "script" and (r.sym_name in used or mentioned(str(r.attr("path", ""))))
    }
    new_ops = []
    for op in module.body.ops:
        if op.name == "skill.resource" and op.sym_name not in used:
            k = kind(op)
            path = str(op.attr("path", ""))
            if k in ALWAYS_KEPT_KINDS or k == "script" and (
                mentioned(path)
                or (folder_ext(path)[1] in IMPORTABLE_EXTENSIONS and folder_ext(path) in kept_script_homes)
            ):
                pass
            else:
                why = "no ctx.ref names it" if k == "reference" else "nothing runs or names it"
                run.removed(op, "resources-removed", why)
                continue
        new_ops.append(op)
    return module.with_ops(new_ops)


def remove_empty_env_ifs(module: Module, run: _Run) -> Module:
    """Drop module-level env.if ops whose branches are all empty."""
    kept = []
    for op in module.body.ops:
        if op.name == "env.if" and not op.results and all(not r.ops for r in op.regions):
            run.removed(op, "dead-ops", "all its branches are empty")
            continue
        kept.append(op)
    return module.with_ops(kept)


def eliminate(module: Module, ctx: PassContext) -> tuple[Module, Counter]:
    """Run every dce rule; returns the module (identity when unchanged) and counters."""
    run = _Run(ctx)
    module = remove_unreachable_procs(module, run)
    module = remove_dead_ops(module, run)
    while True:
        before = module
        module = clean_context(module, run)
        module = remove_unused_resources(module, run)
        module = remove_empty_env_ifs(module, run)
        if module is before:
            break
    return module, run.counts


@attrs.frozen
class DeadCodeElimination(ModulePass):
    """Removes dead ops, unreachable procs, duplicated or orphaned context, unused resources."""

    name = "dce"
    summary = "remove unused model calls and pure ops, empty branches, duplicate context, unused resources and procs"

    def run(self, module: Module, am, ctx: PassContext) -> PassResult:
        new, counts = eliminate(module, ctx)
        ctx.add_stats(counts, prefix=PASS)
        if new is module:
            return self.unchanged(module)
        return self.changed(new)
