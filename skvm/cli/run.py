"""``skvm-run``: execute a skill (a ``.skir`` file or a skill folder) in the VM.

The procedure's result goes to stdout; progress, ``--trace`` lines, warnings,
the summary and diagnostics go to stderr. Exit 0 on success, 1 on failure
(the failing op's location and reason as a diagnostic, never a traceback).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from skvm.cli import common
from skvm.diagnostics import SkvmError
from skvm.ir.operation import Module

TOOL = "skvm-run"
#: What ``--compile`` runs when no ``--passes`` is given: the default pipeline needs a
#: ``--target`` (legalize); without one, its target-independent passes.
COMPILE_PIPELINE = "default"
COMPILE_PIPELINE_NO_TARGET = "canonicalize,resolve-env,dce,parallelize,secure"


def build_parser() -> common.DriverArgumentParser:
    """The argument parser of skvm-run."""
    p = common.DriverArgumentParser(
        prog=TOOL, description="Run a skill (.skir or skill folder) in the skvm VM.", allow_abbrev=False
    )
    p.add_argument("input", help=".skir file, skill folder or SKILL.md")
    p.add_argument("--proc", default="main", help="procedure to run (default: main)")
    p.add_argument("--input", dest="inputs", action="append", default=[], metavar="K=V",
                   help="bind procedure parameter K to V (repeatable)")
    p.add_argument("--task", default=None, help="the task text (parameter %%task)")
    p.add_argument("--workdir", default=".", help="work directory (default: the current one)")
    p.add_argument("--model", default=None, help="litellm model id (default: $SKVM_MODEL or the embedded model)")
    p.add_argument("--max-steps", type=common.count(1), default=None, metavar="N", help="turns per llm.step")
    p.add_argument("--timeout", type=common.seconds, default=None, metavar="S", help="wall-clock limit of the run")
    p.add_argument("--command-timeout", type=common.seconds, default=60.0, metavar="S",
                   help="wall-clock limit of one command (default 60)")
    p.add_argument("--budget-tokens", type=common.count(1), default=None, metavar="N", help="token budget of the run")
    p.add_argument("--max-width", type=common.count(1), default=8, metavar="N",
                   help="default width of ctl.map / ctl.parallel pools (default 8)")
    p.add_argument("--protocol", choices=("auto", "act", "tools"), default="auto",
                   help="agent-loop protocol (auto: act for the embedded model)")
    p.add_argument("--model-workers", type=common.count(0), default=None, metavar="N",
                   help="worker processes for concurrent model calls (default: $SKVM_MODEL_WORKERS, else 4 on hosts"
                        " with 4 or more cores and 0 below; 0: none)")
    p.add_argument("--trace", action="store_true", help="print one line per executed op")
    p.add_argument("--no-record", action="store_true", help="do not write the trace store")
    p.add_argument("--dry-run", action="store_true", help="print the execution plan and stop")
    p.add_argument("--allow-env", action="append", default=[], metavar="NAME",
                   help="pass a secret-looking variable the skill requires (repeatable, or comma-separated)")
    p.add_argument("--allow-network", action="store_true", help="allow network access")
    p.add_argument("--compile", action="store_true", help="optimize first (the default pipeline with --target, else its"
                   " target-independent passes)")
    p.add_argument("--passes", default=None, metavar="PIPELINE", help="optimize with this pipeline first")
    p.add_argument("--target", default=None, help="target profile for the passes")
    p.add_argument("--skill-root", default=None, help="where a .skir file's bundled files are")
    return p


class RunDriver(common.Driver):
    """skvm-run as a class: ``RunDriver(args).run()`` returns the exit code."""

    tool = TOOL

    def __init__(
        self,
        args: Sequence[str] | None = None,
        stdin: IO[str] | None = None,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
        *,
        client=None,
    ):
        super().__init__(args, stdin, stdout, stderr)
        # Tests inject a ModelClient; normally it is made on the first model op.
        self.client = client

    def _run(self) -> int:
        opts = self._parse(build_parser())
        self.engine = common.make_engine(self.stderr)
        try:
            module, root = self._load()
            module = self._optimize(module)
            if opts.dry_run:
                from skvm.runtime.plan import build_plan

                self.stdout.write(build_plan(module, opts.proc, opts.model or ""))
                return 0
            return self._execute(module, root)
        except SkvmError as exc:
            self.engine.extend(exc.diagnostics)
            return 1

    # ------------------------------------------------------------------ load
    def _load(self) -> tuple[Module, Path | None]:
        path = self.opts.input
        if common.is_skill_input(path):
            from skvm.frontend.importer import import_skill

            # Import warnings are the compiler's business; skvm-run shows errors only.
            quiet = common.make_engine(None)
            quiet.sources = self.engine.sources
            module = import_skill(path, quiet)
            root = Path(path) if Path(path).is_dir() else Path(path).parent
            return module, root
        from skvm.ir.parser import parse_module
        from skvm.ir.verifier import verify

        name, text = common.read_text_input(path, self.stdin)
        self.engine.sources.add(name, text)
        module = parse_module(text, name)
        problems = verify(module)
        if problems:
            raise SkvmError(problems)
        root = Path(self.opts.skill_root) if self.opts.skill_root else Path(path).parent
        return module, root

    def _optimize(self, module: Module) -> Module:
        text = self.opts.passes
        if text is None and self.opts.compile:
            text = COMPILE_PIPELINE if self.opts.target else COMPILE_PIPELINE_NO_TARGET
        if not text:
            return module
        from skvm.passes.base import PassContext
        from skvm.passes.manager import PassManager
        from skvm.passes.pipeline import parse_pipeline

        ctx = PassContext(diagnostics=self.engine, target=self.opts.target)
        return PassManager(parse_pipeline(text), ctx).run(module)

    # ------------------------------------------------------------------ run
    def _inputs(self) -> dict[str, str]:
        inputs = {}
        for item in self.opts.inputs:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise common.UsageError(f"--input expects K=V, got '{item}'")
            inputs[key.lstrip("%")] = value
        if self.opts.task is not None:
            inputs["task"] = self.opts.task
        return inputs

    def _execute(self, module: Module, root: Path | None) -> int:
        from skvm.runtime.interpreter import Interpreter, RunOptions
        from skvm.runtime.progress import Progress

        opts = self.opts
        allow_env = tuple(n.strip() for item in opts.allow_env for n in item.split(",") if n.strip())
        options = RunOptions(
            workdir=Path(opts.workdir),
            skill_root=root,
            model=opts.model,
            max_steps=opts.max_steps,
            timeout_s=opts.timeout,
            budget_tokens=opts.budget_tokens,
            allow_env=allow_env,
            allow_network=opts.allow_network,
            protocol=opts.protocol,
            command_timeout_s=opts.command_timeout,
            max_width=opts.max_width,
            record_traces=not opts.no_record,
            model_workers=opts.model_workers,
        )
        tty = bool(getattr(self.stderr, "isatty", lambda: False)())
        progress = Progress(self.stderr, tty=tty, trace=opts.trace)
        interp = Interpreter(module, options, client=self.client, listener=progress)
        try:
            result = interp.run(opts.proc, self._inputs())
        except SkvmError as exc:
            progress.close()
            self.engine.extend(interp.warnings)
            self.engine.extend(exc.diagnostics)
            self._summary("failed", interp.op_count, interp.tokens_in + interp.tokens_out,
                          progress, interp.run_id)
            return 1
        progress.close()
        self.engine.extend(interp.warnings)
        from skvm.runtime.values import to_text

        for value in result.values:
            text = to_text(value)
            self.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        self._summary("ok", result.ops, result.tokens_in + result.tokens_out, progress, result.run_id)
        return 0

    def _summary(self, status: str, ops: int, tokens: int, progress, run_id: str | None) -> None:
        import time

        elapsed = time.perf_counter() - progress.start
        run = f", run {run_id}" if run_id else ""
        self.stderr.write(f"{TOOL}: {status}: {ops} op(s), {tokens} token(s), {elapsed:.2f}s{run}\n")


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point."""
    sys.exit(RunDriver(args).run())


if __name__ == "__main__":  # pragma: no cover
    main()
