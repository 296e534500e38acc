"""Base classes of the pass infrastructure: analyses, transforms, preservation.

As in LLVM's new pass manager, analyses and transforms are separate kinds.
An analysis computes a result from a module and never changes it; the
:class:`~skvm.passes.manager.AnalysisManager` caches results. A transform
returns a new module (or the same object when nothing changed) together with
the set of analyses it preserved; the manager drops every cached result that
was not preserved.

Passes are small frozen ``attrs`` classes with a kebab-case ``name`` and typed
option fields parsed from pipeline text ``name{key=value}`` (as in xDSL).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from skvm.diagnostics import DiagnosticEngine
from skvm.ir.operation import Module

if TYPE_CHECKING:
    from skvm.passes.manager import AnalysisManager


@attrs.frozen
class PreservedAnalyses:
    """Which analyses a transform keeps valid."""

    all: bool = False
    names: frozenset[str] = frozenset()

    @classmethod
    def everything(cls) -> PreservedAnalyses:
        """Everything is preserved (the transform changed nothing)."""
        return cls(all=True)

    @classmethod
    def nothing(cls) -> PreservedAnalyses:
        """Nothing is preserved."""
        return cls()

    @classmethod
    def only(cls, *names: str) -> PreservedAnalyses:
        """Only the named analyses are preserved."""
        return cls(names=frozenset(names))

    def preserves(self, name: str) -> bool:
        """Whether analysis ``name`` stays valid."""
        return self.all or name in self.names


@attrs.frozen
class PassContext:
    """Tool-wide settings passes may consult (target, environment, diagnostics)."""

    diagnostics: DiagnosticEngine = attrs.field(factory=lambda: DiagnosticEngine(stream=None))
    #: Default ``--target`` for passes that take one.
    target: str | None = None
    #: Default ``--env`` for resolve-env.
    env: str | None = None
    #: Turn legalization errors into warnings.
    allow_illegal: bool = False
    #: Free-form extra settings (per-tool).
    extra: dict[str, Any] = attrs.field(factory=dict)

    def add_stats(self, counters: Mapping[str, int], prefix: str = "") -> None:
        """Add the non-zero ``counters`` (as ``prefix.key``) to ``--stats``, if the driver collects them."""
        stats = self.extra.get("stats")
        if not isinstance(stats, dict):
            return
        for key, n in counters.items():
            if n:
                name = f"{prefix}.{key}" if prefix else key
                stats[name] = stats.get(name, 0) + n


class Analysis:
    """An analysis: computes a result about a module, cached by the manager."""

    #: Kebab-case name used in pipelines (``require<name>``, ``print<name>``).
    name: ClassVar[str] = ""
    #: One-line summary for ``--list-passes``.
    summary: ClassVar[str] = ""

    def run(self, module: Module, am: AnalysisManager) -> Any:
        """Compute the analysis result for ``module``."""
        raise NotImplementedError

    def print(self, result: Any, module: Module) -> str:
        """Render a result as text for ``print<name>`` (FileCheck-able)."""
        return repr(result)


@attrs.frozen
class PassResult:
    """What a transform returns: the module and what it preserved."""

    module: Module
    preserved: PreservedAnalyses


@attrs.frozen
class ModulePass:
    """A transform over a whole module. Subclasses add typed option fields."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def run(self, module: Module, am: AnalysisManager, ctx: PassContext) -> PassResult:
        """Transform ``module``; return the result and the preserved analyses."""
        raise NotImplementedError

    # ---- helpers ----------------------------------------------------------------------
    @staticmethod
    def unchanged(module: Module) -> PassResult:
        """The result of a run that changed nothing."""
        return PassResult(module, PreservedAnalyses.everything())

    @staticmethod
    def changed(module: Module, *preserved: str) -> PassResult:
        """The result of a run that produced ``module``, preserving ``preserved``."""
        return PassResult(module, PreservedAnalyses.only(*preserved))
