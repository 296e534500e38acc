"""The pass manager, the analysis manager and pass instrumentation.

:class:`PassManager` runs a parsed pipeline over a module. Around every pass
it applies the instrumentation the user asked for (``--print-before``,
``--print-after``, ``--print-after-all``, ``--print-changed``,
``--verify-each``, ``--debug-pass-manager``, ``--time-passes``) and, when a
pass raises, writes a crash reproducer: the IR the pass received and the
pipeline that reproduces the failure.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Sequence
from typing import IO, Any

import attrs

from skvm.diagnostics import Diagnostic, Location, Severity, SkvmError
from skvm.ir.operation import Module
from skvm.ir.printer import print_module
from skvm.ir.verifier import verify_changed
from skvm.passes.base import Analysis, ModulePass, PassContext, PreservedAnalyses
from skvm.passes.pipeline import PipelineElement, PseudoPass, element_text, print_pipeline
from skvm.perf import paused_gc


class AnalysisManager:
    """Caches analysis results for the current module; invalidates on change."""

    def __init__(self, log: IO[str] | None = None):
        self._cache: dict[str, tuple[Module, Any]] = {}
        self.log = log
        #: How many times each analysis actually ran (for tests and stats).
        self.run_counts: dict[str, int] = {}

    def get(self, name: str, module: Module) -> Any:
        """The result of analysis ``name`` for ``module``, computed once."""
        from skvm.passes.registry import ANALYSES

        cached = self._cache.get(name)
        if cached is not None and cached[0] is module:
            return cached[1]
        analysis: Analysis = ANALYSES[name]()
        if self.log is not None:
            self.log.write(f"Running analysis: {name} on @{module.sym_name}\n")
        result = analysis.run(module, self)
        self.run_counts[name] = self.run_counts.get(name, 0) + 1
        self._cache[name] = (module, result)
        return result

    def cached(self, name: str) -> bool:
        """Whether a result for ``name`` is cached."""
        return name in self._cache

    def invalidate(self, preserved: PreservedAnalyses, module: Module | None = None) -> None:
        """Drop cached results not in ``preserved``; re-key preserved ones to ``module``."""
        for name in list(self._cache):
            if preserved.preserves(name):
                if module is not None:
                    self._cache[name] = (module, self._cache[name][1])
                continue
            if self.log is not None:
                self.log.write(f"Invalidating analysis: {name}\n")
            del self._cache[name]

    def invalidate_one(self, name: str) -> None:
        """Drop one cached result."""
        if name in self._cache:
            if self.log is not None:
                self.log.write(f"Invalidating analysis: {name}\n")
            del self._cache[name]


@attrs.define
class Instrumentation:
    """What the pass manager prints and checks around each pass."""

    print_before: frozenset[str] = frozenset()
    print_after: frozenset[str] = frozenset()
    print_before_all: bool = False
    print_after_all: bool = False
    print_changed: bool = False
    verify_each: bool = True
    debug_pass_manager: bool = False
    time_passes: bool = False
    print_generic: bool = False
    allow_unregistered: bool = False
    #: Where a crash reproducer is written when a pass raises (None: no file).
    crash_reproducer: str | None = None
    #: IR dumps and logs go here (stderr by default; stdout is the artifact).
    dump: IO[str] = attrs.field(factory=lambda: sys.stderr)


@attrs.define
class PassTiming:
    """Wall time spent in one pipeline element."""

    name: str
    seconds: float


class PassManager:
    """Runs pipeline elements over a module with instrumentation."""

    def __init__(
        self,
        pipeline: Sequence[PipelineElement],
        ctx: PassContext | None = None,
        instrumentation: Instrumentation | None = None,
    ):
        self.pipeline = list(pipeline)
        self.ctx = ctx or PassContext()
        self.inst = instrumentation or Instrumentation()
        self.timings: list[PassTiming] = []
        self.analyses = AnalysisManager(self.inst.dump if self.inst.debug_pass_manager else None)

    @property
    def pipeline_text(self) -> str:
        """The canonical pipeline text."""
        return print_pipeline(self.pipeline)

    def _dump(self, banner: str, module: Module) -> None:
        self.inst.dump.write(f"// -----// IR Dump {banner} //----- //\n")
        self.inst.dump.write(print_module(module, generic=self.inst.print_generic))

    def run(self, module: Module) -> Module:
        """Run the pipeline; raise :class:`SkvmError` on a failing pass or verify."""
        # Passes build many small acyclic nodes; collector rescans only cost time.
        with paused_gc():
            return self._run(module)

    def _run(self, module: Module) -> Module:
        log = self.inst.dump if self.inst.debug_pass_manager else None
        for element in self.pipeline:
            name = element_text(element)
            short = element.name if isinstance(element, ModulePass) else element.kind
            started = time.perf_counter()
            if isinstance(element, PseudoPass):
                self._run_pseudo(element, module)
                self.timings.append(PassTiming(name, time.perf_counter() - started))
                continue
            if self.inst.print_before_all or element.name in self.inst.print_before:
                self._dump(f"Before {name}", module)
            if log is not None:
                log.write(f"Running pass: {name} on @{module.sym_name}\n")
            try:
                result = element.run(module, self.analyses, self.ctx)
            except SkvmError:
                raise
            except Exception as exc:  # a bug in a pass: reproduce, then report
                self._write_reproducer(module, element, exc)
                raise
            new_module = result.module
            self.timings.append(PassTiming(name, time.perf_counter() - started))
            changed = new_module is not module
            if changed:
                self.analyses.invalidate(result.preserved, new_module)
            if self.inst.print_after_all or short in self.inst.print_after or self.inst.print_changed and changed and new_module != module:
                self._dump(f"After {name}", new_module)
            if self.inst.verify_each and changed:
                # The pipeline's input was verified by the caller; each module
                # after it is verified here, so only what a pass rebuilt needs
                # checking again.
                problems = verify_changed(new_module, module, self.inst.allow_unregistered)
                if problems:
                    raise SkvmError(
                        [
                            Diagnostic(
                                Severity.ERROR,
                                f"'{name}' produced invalid IR: {d.message}",
                                d.loc,
                            )
                            for d in problems
                        ]
                    )
            module = new_module
        return module

    def _run_pseudo(self, element: PseudoPass, module: Module) -> None:
        from skvm.passes.registry import ANALYSES

        if element.kind == "require":
            self.analyses.get(element.analysis, module)
        elif element.kind == "invalidate":
            self.analyses.invalidate_one(element.analysis)
        elif element.kind == "print":
            result = self.analyses.get(element.analysis, module)
            text = ANALYSES[element.analysis]().print(result, module)
            self.inst.dump.write(f"// {element.analysis} for @{module.sym_name}\n")
            self.inst.dump.write(text if text.endswith("\n") else text + "\n")

    def _write_reproducer(self, module: Module, element: ModulePass, exc: Exception) -> None:
        """Write the IR the crashing pass received and the pipeline that reproduces it.

        The Python traceback goes into the reproducer (as comments), not to
        the terminal: users see one error line and where the file is.
        """
        path = self.inst.crash_reproducer
        if not path:
            return
        trace = "".join(traceback.format_exception(exc)).rstrip("\n").split("\n")
        header = (
            f"// skvm crash reproducer: pass '{element_text(element)}' raised "
            f"{type(exc).__name__}: {exc}\n"
            f"// configuration: -passes={element_text(element)}\n"
            f"// full pipeline: -passes={self.pipeline_text}\n"
            + "".join(f"// | {line}\n" for line in trace)
        )
        body = print_module(module, generic=True)
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(header + body)
        except OSError as err:
            self.inst.dump.write(f"note: could not write the crash reproducer {path}: {err.strerror}\n")
            return
        self.inst.dump.write(f"note: crash reproducer written to {path}\n")

    def timing_report(self) -> str:
        """A ``--time-passes`` table."""
        total = sum(t.seconds for t in self.timings) or 1e-12
        lines = [
            "===" + "-" * 60 + "===",
            "                      ... Pass execution timing report ...",
            "===" + "-" * 60 + "===",
            f"  Total Execution Time: {total:.6f} seconds",
            "",
            "   ---Wall Time---  --- Name ---",
        ]
        for t in self.timings:
            lines.append(f"   {t.seconds:.6f} ({100 * t.seconds / total:5.1f}%)  {t.name}")
        lines.append(f"   {total:.6f} (100.0%)  Total")
        return "\n".join(lines) + "\n"


def pass_error(loc: Location | None, message: str) -> SkvmError:
    """A located error raised by a pass for bad input it cannot handle."""
    return SkvmError.at(loc, message)
