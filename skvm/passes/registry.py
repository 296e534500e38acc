"""One table of every pass, analysis and named pipeline (greppable, like
LLVM's ``PassRegistry.def``).

Entries name the class by ``module:Class`` and are imported on first use,
so starting a tool does not import every pass.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TypeVar

T = TypeVar("T")

#: Transform passes: name -> "module:Class".
PASS_TABLE: dict[str, str] = {
    "canonicalize": "skvm.passes.transforms.canonicalize:Canonicalize",
    "legalize": "skvm.passes.transforms.legalize:Legalize",
    "resolve-env": "skvm.passes.transforms.resolve_env:ResolveEnv",
    "dce": "skvm.passes.transforms.dce:DeadCodeElimination",
    "parallelize": "skvm.passes.transforms.parallelize:Parallelize",
    "secure": "skvm.passes.transforms.secure:Secure",
}

#: Analyses: name -> "module:Class".
ANALYSIS_TABLE: dict[str, str] = {
    "effects": "skvm.passes.analysis.effects:EffectsAnalysis",
    "dep-graph": "skvm.passes.analysis.dep_graph:DepGraphAnalysis",
    "caps": "skvm.passes.analysis.caps:CapsAnalysis",
    "token-cost": "skvm.passes.analysis.token_cost:TokenCostAnalysis",
    "env-usage": "skvm.passes.analysis.env_usage:EnvUsageAnalysis",
}

#: Named pipelines expand in place in pipeline text.
NAMED_PIPELINES: dict[str, str] = {
    "O0": "",
    "O1": "canonicalize,dce",
    "O2": "canonicalize,legalize,resolve-env,dce,parallelize,secure",
    "default": "O2",
}


class _LazyTable(Mapping[str, type]):
    """A read-only mapping that imports classes on first access."""

    def __init__(self, table: dict[str, str]):
        self._table = table
        self._loaded: dict[str, type] = {}

    def __getitem__(self, key: str) -> type:
        if key not in self._loaded:
            target = self._table[key]
            module_name, _, class_name = target.partition(":")
            self._loaded[key] = getattr(importlib.import_module(module_name), class_name)
        return self._loaded[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def __contains__(self, key: object) -> bool:
        return key in self._table


PASSES: Mapping[str, type] = _LazyTable(PASS_TABLE)
ANALYSES: Mapping[str, type] = _LazyTable(ANALYSIS_TABLE)


def expand_named(name: str) -> str:
    """Fully expand a named pipeline into pass names."""
    text = NAMED_PIPELINES[name]
    parts = []
    for item in filter(None, text.split(",")):
        parts.append(expand_named(item) if item in NAMED_PIPELINES else item)
    return ",".join(p for p in parts if p)


def list_passes() -> str:
    """The ``--list-passes`` text: every pass, analysis and named pipeline."""
    lines = ["Transforms:"]
    for name in sorted(PASS_TABLE):
        lines.append(f"  {name:<16} {PASSES[name].summary}")
    lines.append("Analyses (require<name>, invalidate<name>, print<name>):")
    for name in sorted(ANALYSIS_TABLE):
        lines.append(f"  {name:<16} {ANALYSES[name].summary}")
    lines.append("Named pipelines:")
    for name in NAMED_PIPELINES:
        lines.append(f"  {name:<16} {expand_named(name) or '(verify only)'}")
    return "\n".join(lines) + "\n"
