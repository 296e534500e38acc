"""The ``dep-graph`` analysis: a dependence DAG per region (networkx).

Nodes are the indices of a region's ops. An edge ``i -> j`` (i before j)
means j must run after i: j uses a value i defines (``def-use``, including
uses nested in j's regions), or their effects conflict (``effect``: write
after write, read after write, write after read, or an unknown op, which is
a barrier). ``parallelize`` schedules from these graphs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

import attrs

from skvm.ir.operation import Effect, Module, Op, Region
from skvm.passes.analysis.effects import ANY_PATH, EffectsResult, paths_overlap
from skvm.passes.base import Analysis
from skvm.passes.irutil import deep_uses

if TYPE_CHECKING:
    import networkx as nx

_WORLD = Effect.READ | Effect.WRITE | Effect.EXEC | Effect.NET | Effect.ENV


def _is_glob(path: str) -> bool:
    return path == ANY_PATH or "*" in path or "?" in path or "[" in path


def region_graph(region: Region, effects: EffectsResult) -> nx.DiGraph:
    """The dependence graph of one region's ops (networkx), built in linear time."""
    return _to_graph(len(region.ops), region_edges(region, effects))


def _to_graph(n: int, edges: dict[tuple[int, int], dict]) -> nx.DiGraph:
    # Imported here: networkx takes ~0.4 s to import and the passes only need
    # the edges; graphs are built for print<dep-graph> and for API users.
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from((i, j, data) for (i, j), data in edges.items())
    return graph


def region_edges(
    region: Region, effects: EffectsResult, uses: Callable[[Op], list[str]] = deep_uses
) -> dict[tuple[int, int], dict]:
    """The edges ``(i, j) -> {"kind": …}`` of one region's dependence graph, in insertion order.

    Instead of comparing every pair of ops, it keeps, per path, the last
    writer and the readers since, plus the effectful ops since the last
    unknown op (a barrier). Globs and paths only known at run time (``*``)
    are compared against every path seen, which is rare. ``uses`` gives the
    values an op and its nested ops use (a caller may pass a memoized
    :func:`~skvm.passes.irutil.deep_uses`).
    """
    ops = region.ops
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
        for name in sorted(set(uses(op))):
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
    return edges


class _LazyEdges(Mapping[str, dict[tuple[int, int], dict]]):
    """Region path -> the region's edges, computed on first access.

    ``parallelize`` only asks for the regions where some ops could move
    (two or more ops between barriers), so most regions are never scanned.
    """

    def __init__(self, regions: dict[str, Region], effects: EffectsResult):
        self._regions = regions
        self._effects = effects
        self._computed: dict[str, dict[tuple[int, int], dict]] = {}

    def __getitem__(self, path: str) -> dict[tuple[int, int], dict]:
        edges = self._computed.get(path)
        if edges is None:
            edges = self._computed[path] = region_edges(self._regions[path], self._effects)
        return edges

    def __iter__(self) -> Iterator[str]:
        return iter(self._regions)

    def __len__(self) -> int:
        return len(self._regions)


class _LazyGraphs(Mapping[str, "nx.DiGraph"]):
    """Region path -> networkx graph, built from the edges on first access."""

    def __init__(
        self, edges: Mapping[str, dict[tuple[int, int], dict]], regions: dict[str, Region]
    ):
        self._edges = edges
        self._regions = regions
        self._built: dict[str, nx.DiGraph] = {}

    def __getitem__(self, path: str) -> nx.DiGraph:
        graph = self._built.get(path)
        if graph is None:
            graph = self._built[path] = _to_graph(len(self._regions[path].ops), self._edges[path])
        return graph

    def __iter__(self) -> Iterator[str]:
        return iter(self._edges)

    def __len__(self) -> int:
        return len(self._edges)


@attrs.frozen
class DepGraphResult:
    """Dependence graphs keyed by region path (``@main``, ``@main#3.0``).

    ``edges`` holds each region's edges (what the passes consume); ``graphs``
    gives the same as networkx graphs. Both are computed per region on first
    access.
    """

    graphs: Mapping[str, nx.DiGraph]
    regions: dict[str, Region]
    edges: Mapping[str, dict[tuple[int, int], dict]] = attrs.field(factory=dict)


class DepGraphAnalysis(Analysis):
    """Builds a dependence DAG for every region of every procedure."""

    name = "dep-graph"
    summary = "dependence DAG of each region from def-use chains and effects (networkx)"

    def run(self, module: Module, am) -> DepGraphResult:
        effects: EffectsResult = am.get("effects", module)
        regions: dict[str, Region] = {}

        def visit(path: str, region: Region) -> None:
            regions[path] = region
            for i, op in enumerate(region.ops):
                for r, inner in enumerate(op.regions):
                    visit(f"{path}#{i}.{r}", inner)

        for op in module.procs():
            if op.regions:
                visit(f"@{op.sym_name}", op.regions[0])
        edges = _LazyEdges(regions, effects)
        return DepGraphResult(_LazyGraphs(edges, regions), regions, edges)

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
