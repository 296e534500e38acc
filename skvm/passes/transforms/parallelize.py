"""The ``parallelize{max-width=N}`` transform: concurrency extraction.

It schedules every region of every procedure from the ``dep-graph`` analysis
(edges = def-use chains and effect conflicts; an op with unknown effects is a
barrier) and makes the concurrency explicit:

* **DLP** — a ``ctl.for_each`` whose iterations cannot interfere becomes a
  ``ctl.map {max_width = N}``. Iterations interfere when the body writes a
  path that is not the loop variable itself (another iteration writes it
  too), or writes the loop variable's path while also reading a fixed path
  (it could be one of the elements), or has unknown effects, or returns from
  the procedure. A path given by the loop variable (``%f`` in ``reads``,
  ``writes``, a ``tool.read``/``tool.write`` path) is per iteration: the
  elements are taken to be distinct files, as in "for each file".
* **TLP** — a maximal run of ops with known effects (a *segment*) whose
  dependence graph splits into two or more independent *threads* (weakly
  connected components with at least two ops, or a single model call or
  control-flow op) becomes ``ctl.parallel {kind = tlp}``, one branch per
  component.
* **ILP** — within a run of adjacent tool calls with declared effects
  (``tool.read``, ``tool.fetch``, ``tool.exec``, ``tool.script``,
  ``tool.write``) the ops are list-scheduled: each step issues up to
  ``max-width`` ready calls in one turn as ``ctl.parallel {kind = ilp}``
  with one op per branch.

Results of a parallel op keep the original value names, so nothing after it
changes; the ops inside a branch get fresh names (``%a`` → ``%a_1``), unique
in the procedure, and the branch ends with ``ctl.yield`` of the values used
after the group. Branches are chunked to at most ``max-width``. The output
is deterministic and the pass is idempotent (a second run changes nothing).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence

import attrs

from skvm.ir.attributes import DictAttr, Keyword, ValueRef
from skvm.ir.operation import Effect, Module, Op, Region, Trait, Value
from skvm.passes import irutil
from skvm.passes.analysis.dep_graph import DepGraphResult, region_edges
from skvm.passes.analysis.effects import ANY_PATH, EffectsResult, local_effects, summarize
from skvm.passes.base import ModulePass, PassContext, PassResult

NAME = "parallelize"

#: Tool calls that can be issued together in one turn (ILP candidates).
ILP_OPS: frozenset[str] = frozenset(
    {"tool.read", "tool.fetch", "tool.exec", "tool.script", "tool.write"}
)
#: Ops that always end a segment: they change what later ops see.
BARRIER_OPS: frozenset[str] = frozenset(
    {"env.require", "env.bind", "env.if", "ctl.call", "ctl.return", "ctl.yield", "jit.solid"}
)
#: Ops whose regions are not scheduled (a jit.solid keeps its fallback as is).
OPAQUE_REGIONS: frozenset[str] = frozenset({"jit.solid"})


# ---------------------------------------------------------------------------
# renaming
# ---------------------------------------------------------------------------


def _rename_attr(value, mapping: dict[str, str]):
    """``value`` with every ``%x`` in ``mapping`` renamed (identity when untouched)."""
    if isinstance(value, ValueRef):
        new = mapping.get(value.name)
        return ValueRef(new) if new is not None else value
    if isinstance(value, tuple):
        items = tuple(_rename_attr(v, mapping) for v in value)
        return value if all(a is b for a, b in zip(items, value)) else items
    if isinstance(value, DictAttr):
        items = tuple((k, _rename_attr(v, mapping)) for k, v in value.items)
        if all(a[1] is b[1] for a, b in zip(items, value.items)):
            return value
        return DictAttr(items)
    return value


def rename_op(op: Op, mapping: dict[str, str],
              on_region: Callable[[Region, Region], None] | None = None,
              on_op: Callable[[Op, Op], None] | None = None) -> Op:
    """``op`` with defs and uses of the names in ``mapping`` renamed, deeply.

    ``on_region(old, new)`` is told about every region the renaming rebuilt,
    ``on_op(old, new)`` about every op.
    """
    if not mapping:
        return op
    operands = tuple(mapping.get(n, n) for n in op.operands)
    results = tuple(
        Value(mapping[v.name], v.type) if v.name in mapping else v for v in op.results
    )
    attributes = _rename_attr(op.attributes, mapping)
    regions = tuple(
        r.with_ops([rename_op(inner, mapping, on_region, on_op) for inner in r.ops])
        for r in op.regions
    )
    if on_region is not None:
        for old, new in zip(op.regions, regions):
            if new is not old:
                on_region(old, new)
    if (
        operands == op.operands
        and results == op.results
        and attributes is op.attributes
        and all(a is b for a, b in zip(regions, op.regions))
    ):
        return op
    new_op = attrs.evolve(
        op, operands=operands, results=results, attributes=attributes, regions=regions
    )
    if on_op is not None:
        on_op(op, new_op)
    return new_op


class NameGen:
    """Fresh SSA names for one procedure: ``%a`` → ``%a_1``, ``%a_2``…

    The procedure's names are collected on the first :meth:`fresh` (a
    scheduling round that creates nothing never walks the procedure).
    """

    def __init__(self, proc: Op):
        self._proc = proc
        self._used: set[str] | None = None

    @property
    def used(self) -> set[str]:
        """Every name defined or used in the procedure, and every name handed out."""
        if self._used is None:
            used: set[str] = set()
            for region in self._proc.regions:
                used.update(v.name for v in region.args)
            for op in irutil.walk((self._proc,)):
                used.update(v.name for v in op.results)
                used.update(irutil.value_uses(op))
                for region in op.regions:
                    used.update(v.name for v in region.args)
            self._used = used
        return self._used

    def fresh(self, base: str) -> str:
        """A name not used in the procedure, derived from ``base``."""
        used = self.used
        k = 1
        while f"{base}_{k}" in used:
            k += 1
        name = f"{base}_{k}"
        used.add(name)
        return name


#: Every value an op and the ops nested in it use (with repeats).
deep_uses = irutil.deep_uses


# ---------------------------------------------------------------------------
# DLP
# ---------------------------------------------------------------------------


def _iteration_paths(value, var: str) -> tuple[set[str], bool]:
    """(fixed paths, touches the per-iteration path) of a path attribute or list."""
    fixed: set[str] = set()
    per_iter = False
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if item is None:
            continue
        if isinstance(item, ValueRef):
            if item.name == var:
                per_iter = True
            else:
                fixed.add(ANY_PATH)
        elif isinstance(item, str):
            fixed.add(item)
        else:
            fixed.add(ANY_PATH)
    return fixed, per_iter


def _op_paths(op: Op, var: str) -> tuple[set[str], bool, set[str], bool]:
    """Reads (fixed, per-iteration) and writes (fixed, per-iteration) of one op."""
    name = op.name
    if name in ("tool.read", "check.exists"):
        path = op.attr("path")
        if path is None and op.operands:
            path = ValueRef(op.operands[0])
        if path is None:
            return set(), False, set(), False
        r, ri = _iteration_paths(path, var)
        return r, ri, set(), False
    if name == "tool.write":
        w, wi = _iteration_paths(op.attr("path"), var)
        return set(), False, w, wi
    r, ri = _iteration_paths(op.attr("reads"), var)
    w, wi = _iteration_paths(op.attr("writes"), var)
    return r, ri, w, wi


def dlp_blocker(loop: Op) -> str | None:
    """Why the iterations of ``loop`` may interfere, or None when they cannot."""
    if not loop.regions or len(loop.regions[0].args) != 1:
        return "the loop has no element variable"
    var = loop.regions[0].args[0].name
    fixed_reads: set[str] = set()
    fixed_writes: set[str] = set()
    iter_writes = False
    for region in loop.regions:
        for top in region.ops:
            for op in irutil.walk((top,)):
                if op.name == "ctl.return":
                    return "the body returns from the procedure"
                fx = local_effects(op)
                if fx.unknown:
                    return f"'{op.name}' has unknown effects"
                r, _, w, wi = _op_paths(op, var)
                fixed_reads |= r
                fixed_writes |= w
                iter_writes |= wi
    if fixed_writes:
        shown = ", ".join(sorted(fixed_writes))
        return f"every iteration writes the same path ({shown})"
    if iter_writes and fixed_reads:
        shown = ", ".join(sorted(fixed_reads))
        return f"an iteration writes its element while others read {shown}"
    return None


# ---------------------------------------------------------------------------
# the scheduler
# ---------------------------------------------------------------------------


def balanced_chunks(items: Sequence, width: int) -> list[list]:
    """Split ``items`` into the fewest contiguous chunks of at most ``width``, sizes within one."""
    n = len(items)
    if n == 0:
        return []
    count = -(-n // width)
    size, extra = divmod(n, count)
    chunks, start = [], 0
    for k in range(count):
        end = start + size + (1 if k < extra else 0)
        chunks.append(list(items[start:end]))
        start = end
    return chunks


@attrs.define
class _Stats:
    dlp: int = 0
    ilp: int = 0
    tlp: int = 0
    branches: int = 0

    def merged(self, other: _Stats) -> _Stats:
        """The counts of two rounds together."""
        return _Stats(
            self.dlp + other.dlp,
            self.ilp + other.ilp,
            self.tlp + other.tlp,
            self.branches + other.branches,
        )


class _Effects:
    """Effects of ops across scheduling rounds, computed once per op object.

    Starts from the ``effects`` analysis of the module the pass received and
    adds the ops later rounds create; it keeps those ops alive so that their
    ``id`` keys stay theirs.
    """

    def __init__(self, base: EffectsResult):
        self.by_op = dict(base.by_op)
        self._alive: list[Op] = []

    def of(self, op: Op):
        """The effects of ``op`` (including its regions)."""
        found = self.by_op.get(id(op))
        if found is None:
            found = summarize(op, self.by_op)
            self._alive.append(op)
        return found

    def renamed(self, old: Op, new: Op) -> None:
        """``new`` is ``old`` with values renamed: it has the same effects, when known.

        Effects never depend on value names: a path given by a value is
        ``*`` whatever the value is called.
        """
        found = self.by_op.get(id(old))
        if found is not None and id(new) not in self.by_op:
            self.by_op[id(new)] = found
            self._alive.append(new)


class _Memo:
    """What scheduling rounds share: effects, uses, and the regions known not to change."""

    def __init__(self, deps: DepGraphResult, effects: EffectsResult):
        self.deps = deps
        self.effects = _Effects(effects)
        #: ids of regions a round left as they were (the next round would too).
        self.stable: set[int] = set()
        self._alive: list[Region] = []
        #: id(op) -> (op, every value it and its nested ops use); holds the op
        #: so that its id stays its own.
        self._uses: dict[int, tuple[Op, list[str]]] = {}

    def uses(self, op: Op) -> list[str]:
        """:func:`deep_uses` of ``op``, computed once per op object.

        An op with regions is scheduled at every nesting level above it and in
        every round, and its edges and escaping values both need its uses;
        nested ops' lists are reused (same pre-order as :func:`deep_uses`).
        """
        found = self._uses.get(id(op))
        if found is None:
            uses = irutil.value_uses(op)
            for region in op.regions:
                for inner in region.ops:
                    uses.extend(self.uses(inner))
            found = self._uses[id(op)] = (op, uses)
        return found[1]

    def edges(self, region: Region, path: str) -> Iterable[tuple[int, int]]:
        """The dependence edges of ``region`` (the analysis's when it is that region)."""
        if self.deps.regions.get(path) is region:
            return self.deps.edges[path]
        return region_edges(region, self.effects, self.uses)

    def mark_stable(self, region: Region) -> None:
        """Remember that scheduling ``region`` changed nothing."""
        self.stable.add(id(region))
        self._alive.append(region)

    def renamed(self, old: Region, new: Region) -> None:
        """``new`` is ``old`` with values renamed: stable when ``old`` is.

        Scheduling does not depend on value names (only on which op defines
        and uses what, and on effects), so a consistent renaming of a region
        that would not change does not change either.
        """
        if id(old) in self.stable:
            self.mark_stable(new)


class _Scheduler:
    """Rewrites the regions of one procedure."""

    def __init__(self, proc: Op, memo: _Memo, width: int, ctx: PassContext, stats: _Stats):
        self.names = NameGen(proc)
        self.memo = memo
        self.effects = memo.effects
        self.width = width
        self.ctx = ctx
        self.stats = stats

    # -- classification ------------------------------------------------------------
    def _barrier(self, i: int) -> bool:
        op = self._orig[i]
        if op.name in BARRIER_OPS or irutil.has_trait(op, Trait.TERMINATOR):
            return True
        fx = self.effects.of(op)
        return fx.unknown or Effect.CONTROL in fx.kinds

    def _ilp_candidate(self, i: int) -> bool:
        op = self._orig[i]
        return op.name in ILP_OPS and not op.regions and not self.effects.of(op).unknown

    def _is_thread(self, comp: list[int], ops: Sequence[Op]) -> bool:
        """A multi-turn sub-task: some op in it is not a plain tool call (or a parallel op)."""
        return any(
            not self._ilp_candidate(i) and ops[i].name != "ctl.parallel" for i in comp
        )

    # -- regions -------------------------------------------------------------------
    def region(self, region: Region, path: str) -> Region:
        """Schedule ``region`` (nested regions first); unchanged regions are returned as is."""
        if id(region) in self.memo.stable:
            return region
        out = self._region(region, path)
        if out is region:
            self.memo.mark_stable(region)
        return out

    def _region(self, region: Region, path: str) -> Region:
        ops = list(region.ops)
        for i, op in enumerate(ops):
            if op.regions and op.name not in OPAQUE_REGIONS:
                new_regions = [
                    self.region(r, f"{path}#{i}.{k}") for k, r in enumerate(op.regions)
                ]
                op = op.with_regions(new_regions)
            if op.name == "ctl.for_each":
                op = self._dlp(op)
            ops[i] = op
        # Classify by the analysed ops (the effects analysis knows them by identity).
        self._orig = region.ops
        if len(ops) < 2:
            return region.with_ops(ops)
        return region.with_ops(self._schedule(ops, region, path))

    def _dlp(self, loop: Op) -> Op:
        why = dlp_blocker(loop)
        if why is not None:
            return loop
        self.stats.dlp += 1
        self.ctx.diagnostics.remark(
            NAME,
            f"iterations of ctl.for_each are independent: ctl.map with max_width = {self.width}",
            loop.location,
        )
        return Op.build(
            "ctl.map",
            loop.operands,
            loop.results,
            {**loop.attributes.to_dict(), "max_width": self.width},
            loop.regions,
            loop.loc,
            loop.pos,
        )

    def _schedule(self, ops: list[Op], region: Region, path: str) -> list[Op]:
        n = len(ops)
        segment_of = [-1] * n
        segments: list[list[int]] = []
        for i, op in enumerate(ops):
            if self._barrier(i):
                continue
            if i > 0 and segment_of[i - 1] >= 0:
                segment_of[i] = segment_of[i - 1]
                segments[segment_of[i]].append(i)
            else:
                segment_of[i] = len(segments)
                segments.append([i])
        if all(len(seg) < 2 for seg in segments):
            return ops  # nothing can move: every op stays where it is
        # Uses of each name by any op of the region, to find values escaping a group.
        use_count: dict[str, int] = {}
        uses_of: list[list[str]] = []
        for op in ops:
            u = self.memo.uses(op)
            uses_of.append(u)
            for name in u:
                use_count[name] = use_count.get(name, 0) + 1
        self._uses_of = uses_of
        self._use_count = use_count
        edges = self.memo.edges(region, path)
        # Edges inside each segment (edges never leave a segment's index range
        # the wrong way: i < j always).
        succ: dict[int, list[int]] = {}
        pred_count = [0] * n
        for i, j in edges:
            if segment_of[i] >= 0 and segment_of[i] == segment_of[j]:
                succ.setdefault(i, []).append(j)
                pred_count[j] += 1
        out: list[Op] = []
        for i, op in enumerate(ops):
            if segment_of[i] < 0:
                out.append(op)
            elif i == segments[segment_of[i]][0]:
                out.extend(self._segment(segments[segment_of[i]], ops, succ, pred_count))
        return out

    def _segment(self, seg: list[int], ops: list[Op], succ, pred_count) -> list[Op]:
        plans = [(phase, self._components(phase, succ)) for phase in self._phases(seg, succ)]
        threads = [sum(1 for c in comps if self._is_thread(c, ops)) for _, comps in plans]
        if self.width < 2 or max(threads) < 2:
            return self._ilp(seg, ops, succ, pred_count)
        out: list[Op] = []
        for (phase, comps), count in zip(plans, threads):
            if count < 2:
                out.extend(self._ilp(phase, ops, succ, pred_count))
                continue
            for chunk in balanced_chunks(comps, self.width):
                if len(chunk) == 1:
                    out.extend(self._ilp(chunk[0], ops, succ, pred_count))
                    continue
                kind = "tlp" if any(self._is_thread(c, ops) for c in chunk) else "ilp"
                branches = [self._ilp(c, ops, succ, pred_count) for c in chunk]
                out.append(self._parallel(kind, chunk, branches, ops))
        return out

    @staticmethod
    def _phases(seg: list[int], succ) -> list[list[int]]:
        """Cut ``seg`` before every op that joins two or more independent chains.

        Any prefix of a region is a valid phase (edges only go forward), so
        the chains of a fork-join can run as threads up to the join.
        """
        preds: dict[int, list[int]] = {}
        for i in seg:
            for j in succ.get(i, ()):
                preds.setdefault(j, []).append(i)
        parent: dict[int, int] = {}

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        phases: list[list[int]] = []
        current: list[int] = []
        for j in seg:
            inside = [p for p in preds.get(j, ()) if p in parent]
            if len({find(p) for p in inside}) >= 2:
                phases.append(current)
                current, parent, inside = [], {}, []
            parent[j] = j
            current.append(j)
            for p in inside:
                a, b = find(p), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
        phases.append(current)
        return phases

    @staticmethod
    def _components(seg: list[int], succ) -> list[list[int]]:
        parent = {i: i for i in seg}

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for i in seg:
            for j in succ.get(i, ()):
                if j not in parent:
                    continue
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
        groups: dict[int, list[int]] = {}
        for i in seg:
            groups.setdefault(find(i), []).append(i)
        return [groups[k] for k in sorted(groups)]

    def _ilp(self, indices: list[int], ops: list[Op], succ, pred_count) -> list[Op]:
        """List-schedule the runs of adjacent tool calls among ``indices``."""
        out: list[Op] = []
        run: list[int] = []
        for i in indices + [-1]:
            if i >= 0 and self._ilp_candidate(i):
                run.append(i)
                continue
            if run:
                out.extend(self._list_schedule(run, ops, succ))
                run = []
            if i >= 0:
                out.append(ops[i])
        return out

    def _list_schedule(self, run: list[int], ops: list[Op], succ) -> list[Op]:
        if len(run) < 2 or self.width < 2:
            return [ops[i] for i in run]
        members = set(run)
        waiting = {i: 0 for i in run}
        for i in run:
            for j in succ.get(i, ()):
                if j in members:
                    waiting[j] += 1
        ready = [i for i in run if waiting[i] == 0]
        heapq.heapify(ready)
        out: list[Op] = []
        while ready:
            step = [heapq.heappop(ready) for _ in range(min(self.width, len(ready)))]
            if len(step) == 1:
                out.append(ops[step[0]])
            else:
                out.append(self._parallel("ilp", [[i] for i in step],
                                          [[ops[i]] for i in step], ops))
            for i in step:
                for j in succ.get(i, ()):
                    if j in members:
                        waiting[j] -= 1
                        if waiting[j] == 0:
                            heapq.heappush(ready, j)
        return out

    def _parallel(self, kind: str, groups: list[list[int]], branches: list[list[Op]],
                  ops: list[Op]) -> Op:
        """A ctl.parallel with one branch per group; results keep the original names."""
        results: list[Value] = []
        regions: list[Region] = []
        for group, body in zip(groups, branches):
            inner_uses: dict[str, int] = {}
            for i in group:
                for name in self._uses_of[i]:
                    inner_uses[name] = inner_uses.get(name, 0) + 1
            defined = [v for i in sorted(group) for v in ops[i].results]
            mapping = {v.name: self.names.fresh(v.name) for v in defined}
            escaping = [
                v for v in defined
                if self._use_count.get(v.name, 0) > inner_uses.get(v.name, 0)
            ]
            new_body = [
                rename_op(op, mapping, self.memo.renamed, self.effects.renamed) for op in body
            ]
            new_body.append(Op.build("ctl.yield", [mapping[v.name] for v in escaping]))
            regions.append(Region(new_body))
            results.extend(escaping)
        first = ops[min(min(g) for g in groups)]
        self.stats.branches += len(groups)
        if kind == "ilp":
            self.stats.ilp += 1
            what = f"{len(groups)} independent tool calls issued in one turn"
        else:
            self.stats.tlp += 1
            what = f"{len(groups)} independent sub-tasks run as threads"
        self.ctx.diagnostics.remark(NAME, f"{what} (ctl.parallel {{kind = {kind}}})",
                                    first.location)
        return Op.build(
            "ctl.parallel", (), results, {"kind": Keyword(kind)}, regions, first.loc, first.pos
        )


def parallelize_module(module: Module, deps: DepGraphResult, effects: EffectsResult,
                       width: int, ctx: PassContext, memo: _Memo | None = None) -> tuple[Module, _Stats]:
    """Schedule every procedure of ``module``; returns the new module and counters.

    ``memo`` carries effects and unchanged regions from an earlier round over
    the module that round produced (``deps`` and ``effects`` are then unused).
    """
    stats = _Stats()
    memo = memo or _Memo(deps, effects)
    new_ops: list[Op] = []
    for op in module.body.ops:
        if op.name == "skill.proc" and op.regions:
            sched = _Scheduler(op, memo, width, ctx, stats)
            body = sched.region(op.regions[0], f"@{op.sym_name}")
            op = op.with_regions([body, *op.regions[1:]])
        new_ops.append(op)
    return module.with_ops(new_ops), stats


@attrs.frozen
class Parallelize(ModulePass):
    """Turns independent iterations, tool calls and sub-tasks into ctl.map / ctl.parallel."""

    name = NAME
    summary = "extract concurrency: ctl.map (DLP), ctl.parallel ilp/tlp from dep-graph"

    max_width: int = attrs.field(default=4)

    @max_width.validator
    def _check_width(self, attribute, value) -> None:
        if value < 1:
            raise ValueError("max-width must be at least 1")

    def run(self, module: Module, am, ctx: PassContext) -> PassResult:
        """Schedule every procedure to a fixed point; unchanged modules are returned as is."""
        if not module.procs():
            return self.unchanged(module)
        deps: DepGraphResult = am.get("dep-graph", module)
        effects: EffectsResult = am.get("effects", module)
        memo = _Memo(deps, effects)
        new, stats = parallelize_module(module, deps, effects, self.max_width, ctx, memo)
        # Scheduling one level can expose more (an ILP group makes a chain a
        # single node that can then run beside another chain): iterate to a
        # fixed point so that running the pass again changes nothing. A round
        # only revisits the regions the round before changed (the others
        # would come out the same), with effects computed once per op.
        for _ in range(_MAX_ROUNDS):
            if new is module or new == module:
                break
            current = new
            again, more = parallelize_module(current, deps, effects, self.max_width, ctx, memo)
            if again is current or again == current:
                break
            new = again
            stats = stats.merged(more)
        ctx.add_stats(
            {"regions.dlp": stats.dlp, "regions.ilp": stats.ilp, "regions.tlp": stats.tlp,
             "branches": stats.branches},
            prefix=NAME,
        )
        if new is module:
            return self.unchanged(module)
        return self.changed(new)


#: Bound on scheduling rounds per run (each round nests one more level).
_MAX_ROUNDS = 8
