"""The ``dep-graph`` analysis: a dependence DAG per region (networkx).

Nodes are the indices of a region's ops. An edge ``i -> j`` (i before j)
means j must run after i: j uses a value i defines (``def-use``, including
uses nested in j's regions), or their effects conflict (``effect``: write
after write, read after write, write after read, or an unknown op, which is
a barrier). ``parallelize`` schedules from these graphs.
"""

from __future__ import annotations

import attrs
import networkx as nx

from skvm.ir.operation import Module, Op, Region
from skvm.ir.operation import Effect
from skvm.passes.analysis.effects import ANY_PATH, EffectsResult, paths_overlap
from skvm.passes.base import Analysis
from skvm.passes.irutil import deep_uses

_WORLD = Effect.READ | Effect.WRITE | Effect.EXEC | Effect.NET | Effect.ENV


def _is_glob(path: str) -> bool:
    return path == ANY_PATH or "*" in path or "?" in path or "[" in path


def region_graph(region: Region, effects: EffectsResult) -> nx.DiGraph:
    """The dependence graph of one region's ops, built in linear time.

    Instead of comparing every pair of ops, it keeps, per path, the last
    writer and the readers since, plus the effectful ops since the last
    unknown op (a barrier). Globs and paths only known at run time (``*``)
    are compared against every path seen, which is rare.
    """
    graph = nx.DiGraph()
    ops = region.ops
    graph.add_nodes_from(range(len(ops)))
    definer: dict[str, int] = {}
    last_writer: dict[str, int] = {}
    readers: dict[str, list[int]] = {}
    since_barrier: list[int] = []
    last_barrier: int | None = None

    # Edges in insertion order (the first reason for an edge is the one kept).
    edges: dict[tuple[int, int], dict] = {}
    # Paths of each table that are globs or run-time paths: a plain path is
    # looked up directly and only compared against these (usually none).
    glob_writers: dict[str, None] = {}
    glob_readers: dict[str, None] = {}

    def edge(i: int, j: int, kind: str, **data) -> None:
        if i != j and (i, j) not in edges:
            edges[(i, j)] = {"kind": kind, **data}

    def matching(path: str, table, globs) -> list[str]:
        if _is_glob(path):
            return [p for p in table if paths_overlap(frozenset({path}), frozenset({p}))]
        hits = [path] if path in table else []
        hits += [p for p in globs if p != path and p in table
                 and paths_overlap(frozenset({path}), frozenset({p}))]
        return hits

    for j, op in enumerate(ops):
        for name in sorted(set(deep_uses(op))):
            i = definer.get(name)
            if i is not None:
                edge(i, j, "def-use", value=name)
        fx = effects.of(op)
        if not fx.is_pure and not (Effect.CONTROL in fx.kinds):
            touches_world = fx.unknown or bool(fx.reads or fx.writes) or bool(fx.kinds & _WORLD)
            if fx.unknown:
                for i in since_barrier:
                    edge(i, j, "effect")
                if last_barrier is not None:
                    edge(last_barrier, j, "effect")
                last_barrier = j
                since_barrier = []
                last_writer.clear()
                readers.clear()
                glob_writers.clear()
                glob_readers.clear()
            elif touches_world:
                if last_barrier is not None:
                    edge(last_barrier, j, "effect")
                since_barrier.append(j)
                for path in sorted(fx.writes):
                    for p in matching(path, last_writer, glob_writers):
                        edge(last_writer[p], j, "effect")
                    for p in matching(path, readers, glob_readers):
                        for i in readers[p]:
                            edge(i, j, "effect")
                for path in sorted(fx.reads):
                    for p in matching(path, last_writer, glob_writers):
                        edge(last_writer[p], j, "effect")
                for path in fx.writes:
                    last_writer[path] = j
                    readers.pop(path, None)
                    if _is_glob(path):
                        glob_writers[path] = None
                for path in fx.reads:
                    readers.setdefault(path, []).append(j)
                    if _is_glob(path):
                        glob_readers[path] = None
        for v in op.results:
            definer[v.name] = j
    graph.add_edges_from((i, j, data) for (i, j), data in edges.items())
    return graph


@attrs.frozen
class DepGraphResult:
    """Dependence graphs keyed by region path (``@main``, ``@main#3.0``)."""

    graphs: dict[str, nx.DiGraph]
    regions: dict[str, Region]


class DepGraphAnalysis(Analysis):
    """Builds a dependence DAG for every region of every procedure."""

    name = "dep-graph"
    summary = "dependence DAG of each region from def-use chains and effects (networkx)"

    def run(self, module: Module, am) -> DepGraphResult:
        effects: EffectsResult = am.get("effects", module)
        graphs: dict[str, nx.DiGraph] = {}
        regions: dict[str, Region] = {}

        def visit(path: str, region: Region) -> None:
            graphs[path] = region_graph(region, effects)
            regions[path] = region
            for i, op in enumerate(region.ops):
                for r, inner in enumerate(op.regions):
                    visit(f"{path}#{i}.{r}", inner)

        for op in module.procs():
            if op.regions:
                visit(f"@{op.sym_name}", op.regions[0])
        return DepGraphResult(graphs, regions)

    def print(self, result: DepGraphResult, module: Module) -> str:
        lines = []
        for path in result.graphs:
            graph = result.graphs[path]
            region = result.regions[path]
            lines.append(f"region {path} ({graph.number_of_nodes()} ops)")
            for i, j, data in sorted(graph.edges(data=True)):
                what = data.get("kind", "")
                if what == "def-use":
                    what += f" %{data.get('value')}"
                lines.append(
                    f"  {i} {region.ops[i].name} -> {j} {region.ops[j].name} [{what}]"
                )
        return "\n".join(lines) + "\n"
