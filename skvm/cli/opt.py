"""``skvm-opt``: parse, verify, run a pass pipeline and print SkIR.

Modelled on ``opt`` / ``mlir-opt``: the artifact goes to stdout (or ``-o``),
IR dumps, logs and diagnostics to stderr. With no ``-passes`` it parses,
verifies and prints the canonical form. A skill folder or ``SKILL.md`` is
imported first.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from skvm.cli import common
from skvm.diagnostics import (
    Severity,
    SkvmError,
    check_expectations,
    parse_expectations,
)
from skvm.ir.operation import Module
from skvm.ir.parser import parse_module
from skvm.ir.printer import print_module
from skvm.ir.verifier import verify

TOOL = "skvm-opt"


def build_parser() -> common.DriverArgumentParser:
    """The argument parser of skvm-opt."""
    p = common.DriverArgumentParser(
        prog=TOOL,
        description="SkIR optimizer: parse, verify, run passes, print.",
        allow_abbrev=False,
    )
    p.add_argument("input", nargs="?", default="-", help=".skir file, skill folder, SKILL.md or - (stdin)")
    common.add_common_output(p)
    p.add_argument("-passes", "--passes", dest="passes", default=None, metavar="PIPELINE",
                   help="pass pipeline, e.g. 'canonicalize,print<effects>' or 'default'")
    p.add_argument("--target", default=None, help="target profile: <model>@<harness> or a JSON file")
    p.add_argument("--env", default=None, help="environment for resolve-env: host or a JSON file")
    p.add_argument("--allow-illegal", action="store_true", help="legalization failures are warnings")
    p.add_argument("--split-input-file", action="store_true", help="split input on '// -----' lines")
    p.add_argument("--verify-diagnostics", action="store_true",
                   help="check diagnostics against '// expected-error {{…}}' annotations")
    p.add_argument("--allow-unregistered", action="store_true", help="accept ops no dialect registers")
    p.add_argument("--print-generic", action="store_true", help="print every op in generic form")
    p.add_argument("--list-passes", action="store_true", help="list passes, analyses and pipelines")
    p.add_argument("--version", action="store_true", help="print the version")
    p.add_argument("--print-before", default="", metavar="PASSES", help="dump IR before these passes")
    p.add_argument("--print-after", default="", metavar="PASSES", help="dump IR after these passes")
    p.add_argument("--print-before-all", action="store_true", help="dump IR before every pass")
    p.add_argument("--print-after-all", action="store_true", help="dump IR after every pass")
    p.add_argument("--print-changed", action="store_true", help="dump IR after passes that change it")
    p.add_argument("--verify-each", dest="verify_each", action="store_true", default=True,
                   help="verify after every pass (default)")
    p.add_argument("--no-verify-each", dest="verify_each", action="store_false",
                   help="do not verify after every pass")
    p.add_argument("--debug-pass-manager", action="store_true", help="log passes and analyses")
    p.add_argument("--time-passes", action="store_true", help="report time spent in each pass")
    p.add_argument("--print-pipeline-passes", action="store_true",
                   help="print the expanded pipeline and exit")
    p.add_argument("--crash-reproducer", default=None, metavar="FILE",
                   help="where to write the reproducer when a pass crashes")
    p.add_argument("-Rpass", dest="remarks", default=None, metavar="REGEX",
                   help="show optimization remarks of passes matching REGEX")
    p.add_argument("--stats", action="store_true", help="print statistics about what the passes did")
    p.add_argument("-Werror", dest="werror", action="store_true", help="treat warnings as errors")
    return p


class OptDriver(common.Driver):
    """skvm-opt as a class: ``OptDriver(args).run()`` returns the exit code."""

    tool = TOOL

    # ------------------------------------------------------------------------------
    def _run(self) -> int:
        opts = self._parse(build_parser())
        if opts is None:
            return 0
        if opts.list_passes:
            from skvm.passes.registry import list_passes

            self.stdout.write(list_passes())
            return 0
        engine = common.make_engine(
            None if opts.verify_diagnostics else self.stderr, opts.remarks, opts.werror
        )
        if opts.verify_diagnostics:
            engine.remark_filter = __import__("re").compile(opts.remarks or ".*")
        self.engine = engine
        try:
            pipeline = self._pipeline()
        except SkvmError as exc:
            common.make_engine(self.stderr).extend(exc.diagnostics)
            return 1
        if opts.print_pipeline_passes:
            from skvm.passes.pipeline import print_pipeline

            self.stdout.write(print_pipeline(pipeline) + "\n")
            return 0
        try:
            if common.is_skill_input(opts.input):
                return self._run_skill(pipeline)
            name, text = common.read_text_input(opts.input, self.stdin)
        except SkvmError as exc:
            _add_undecodable_source(engine, opts.input)
            engine.extend(exc.diagnostics)
            return 1
        engine.sources.add(name, text)
        chunks = common.split_chunks(text) if opts.split_input_file else [(text, 0)]
        outputs: list[str] = []
        ok = True
        for chunk, offset in chunks:
            before = len(engine.diagnostics)
            result = self._process(name, chunk, offset, pipeline)
            produced = engine.diagnostics[before:]
            if opts.verify_diagnostics:
                expected = [
                    e for e in parse_expectations(chunk)
                ]
                expected = [
                    type(e)(e.severity, e.line + offset, e.text, e.annotation_line + offset)
                    for e in expected
                ]
                reporter = common.make_engine(self.stderr)
                reporter.sources = engine.sources
                if not check_expectations(name, expected, produced, reporter):
                    ok = False
            elif result is None or any(d.severity is Severity.ERROR for d in produced):
                ok = False
            if result is not None:
                outputs.append(result)
        if opts.verify_diagnostics:
            return 0 if ok else 1
        if not ok:
            return 1
        separator = "// -----\n"
        common.write_output(opts.output, separator.join(outputs), self.stdout)
        return 0

    def _pipeline(self):
        from skvm.passes.pipeline import parse_pipeline

        return parse_pipeline(self.opts.passes or "")

    def _run_skill(self, pipeline) -> int:
        from skvm.frontend.importer import import_skill

        try:
            module = import_skill(self.opts.input, self.engine)
        except SkvmError as exc:
            self.engine.extend(exc.diagnostics)
            return 1
        if self.engine.has_errors:
            return 1
        from pathlib import Path

        given = Path(self.opts.input)
        # Passes that read bundled files (secure's script scan) find them here.
        self.skill_root = given if given.is_dir() else given.parent
        # import_skill verified the module already.
        text = self._optimize(module, pipeline, verified=True)
        if text is None or self.engine.has_errors:
            return 1
        common.write_output(self.opts.output, text, self.stdout)
        return 0

    def _process(self, name: str, text: str, offset: int, pipeline) -> str | None:
        """Parse, verify, optimize and print one chunk; None on error."""
        try:
            module = parse_module(text, name, offset)
        except SkvmError as exc:
            self.engine.extend(exc.diagnostics)
            return None
        return self._optimize(module, pipeline)

    def _optimize(self, module: Module, pipeline, verified: bool = False) -> str | None:
        opts = self.opts
        problems = [] if verified else verify(module, opts.allow_unregistered)
        if problems:
            self.engine.extend(problems)
            return None
        if pipeline:
            module = self._run_pipeline(module, pipeline)
            if module is None:
                return None
        return print_module(module, generic=opts.print_generic)

    def _run_pipeline(self, module: Module, pipeline) -> Module | None:
        from skvm.passes.base import PassContext
        from skvm.passes.manager import Instrumentation, PassManager

        opts = self.opts
        dump = self.stderr
        inst = Instrumentation(
            print_before=frozenset(filter(None, opts.print_before.split(","))),
            print_after=frozenset(filter(None, opts.print_after.split(","))),
            print_before_all=opts.print_before_all,
            print_after_all=opts.print_after_all,
            print_changed=opts.print_changed,
            verify_each=opts.verify_each,
            debug_pass_manager=opts.debug_pass_manager,
            time_passes=opts.time_passes,
            print_generic=opts.print_generic,
            allow_unregistered=opts.allow_unregistered,
            crash_reproducer=opts.crash_reproducer or _default_reproducer(),
            dump=dump,
        )
        ctx = PassContext(
            diagnostics=self.engine,
            target=opts.target,
            env=opts.env,
            allow_illegal=opts.allow_illegal,
            extra={
                **({"stats": {}} if opts.stats else {}),
                **({"skill_root": str(self.skill_root)} if getattr(self, "skill_root", None) else {}),
            },
        )
        manager = PassManager(pipeline, ctx, inst)
        try:
            result = manager.run(module)
        except SkvmError as exc:
            self.engine.extend(exc.diagnostics)
            return None
        except Exception as exc:  # a pass crashed: the reproducer was written
            self.stderr.write(f"{TOOL}: error: internal error in a pass: {exc}\n")
            return None
        finally:
            if opts.time_passes:
                self.stderr.write(manager.timing_report())
        if opts.stats:
            self._print_stats(ctx.extra.get("stats", {}))
        return result

    def _print_stats(self, stats: dict) -> None:
        self.stderr.write("===-------------------------------------------------------------===\n")
        self.stderr.write("                          ... Statistics Collected ...\n")
        self.stderr.write("===-------------------------------------------------------------===\n")
        for key in sorted(stats):
            self.stderr.write(f"{stats[key]:>8} {key}\n")


def _add_undecodable_source(engine, path: str) -> None:
    """Register a binary or non-UTF-8 file's text (bad bytes replaced) so its diagnostic can quote the line."""
    try:
        data = open(path, "rb").read(common.MAX_INPUT_BYTES)
    except OSError:
        return
    text = data.replace(b"\x00", b"\xef\xbf\xbd").decode("utf-8", "replace")
    engine.sources.add(path, text)


def _default_reproducer() -> str:
    import os
    import tempfile

    return os.path.join(tempfile.gettempdir(), "skvm-opt-crash-reproducer.skir")


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point."""
    sys.exit(OptDriver(args).run())


if __name__ == "__main__":  # pragma: no cover
    main()



