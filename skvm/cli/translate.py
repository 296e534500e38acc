"""``skvm-translate``: between skill folders and SkIR.

Modelled on ``mlir-translate``. Export: ``--to=<target> in.skir -o DIR``
writes the emitted skill folder at ``DIR`` atomically (a non-empty ``DIR`` is
refused unless ``--force``); ``--install=user|project`` writes it where the
harness looks instead (``--root`` stands for the home or project folder in
tests); ``--print`` prints the bundle as one text stream. Import:
``--from-skill`` (see :meth:`TranslateDriver._from_skill`).
Diagnostics go to stderr; bad input is a diagnostic and exit code 1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from skvm.cli import common
from skvm.diagnostics import SkvmError

TOOL = "skvm-translate"
INSTALL_SCOPES = ("user", "project")


def build_parser() -> common.DriverArgumentParser:
    """The argument parser of skvm-translate."""
    p = common.DriverArgumentParser(
        prog=TOOL,
        description="Translate between skill folders and SkIR; emit a skill for a harness.",
        allow_abbrev=False,
    )
    p.add_argument("input", nargs="?", default="-", help=".skir file or - (stdin); a skill folder with --from-skill")
    p.add_argument("--to", dest="target", default=None, metavar="TARGET", help="emit a skill folder for TARGET")
    p.add_argument("--from-skill", action="store_true", help="import a skill folder into SkIR")
    p.add_argument("-o", dest="output", metavar="DIR", help="output folder (--to) or file (--from-skill)")
    p.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    p.add_argument("--install", choices=INSTALL_SCOPES, default=None,
                   help="write the folder where the harness finds user or project skills")
    p.add_argument("--root", default=None, metavar="DIR",
                   help="home (user) or project folder for --install (default: ~ or the current folder)")
    p.add_argument("--source-root", default=None, metavar="DIR",
                   help="the source skill folder to copy bundled files from")
    p.add_argument("--print", dest="print_bundle", action="store_true",
                   help="print the emitted bundle to stdout as '=== path ===' sections")
    p.add_argument("--list-targets", action="store_true", help="list the targets and exit")
    p.add_argument("-Werror", dest="werror", action="store_true", help="treat warnings as errors")
    p.add_argument("--version", action="store_true", help="print the version")
    return p


class TranslateDriver(common.Driver):
    """skvm-translate as a class: ``TranslateDriver(args).run()`` returns the exit code."""

    tool = TOOL

    # ------------------------------------------------------------------------------
    def _run(self) -> int:
        opts = self._parse(build_parser())
        if opts is None:
            return 0
        if opts.list_targets:
            return self._list_targets()
        self.engine = common.make_engine(self.stderr, None, opts.werror)
        if opts.from_skill:
            return self._from_skill(opts)
        if opts.target is None:
            raise common.UsageError("give --to=<target> (see --list-targets) or --from-skill")
        try:
            return self._export(opts)
        except SkvmError as exc:
            self.engine.extend(exc.diagnostics)
            return 1

    def _list_targets(self) -> int:
        from skvm.backends import list_targets
        from skvm.backends.conventions import HARNESSES

        width = max(len(name) for name, _ in list_targets())
        for name, summary in list_targets():
            h = HARNESSES[name]
            where = ", ".join(d for d in (h.user_dir, h.project_dir) if d)
            self.stdout.write(f"{name:<{width}}  {summary}" + (f" [{where}]" if where else "") + "\n")
        return 0

    # -- import (the lead finishes this) ----------------------------------------------
    def _from_skill(self, opts) -> int:
        """HOOK (--from-skill): import a skill folder and print its module.

        Calls ``skvm.frontend.importer.import_skill(path, engine)``; the
        front-end owner completes the options (``-o`` file, diagnostics
        verification) here.
        """
        from skvm.frontend.importer import import_skill
        from skvm.ir.printer import print_module

        try:
            module = import_skill(opts.input, self.engine)
        except SkvmError as exc:
            self.engine.extend(exc.diagnostics)
            return 1
        if self.engine.has_errors:
            return 1
        common.write_output(opts.output, print_module(module), self.stdout)
        return 0

    # -- export -------------------------------------------------------------------------
    def _load(self, opts):
        """The input module (a .skir file, stdin, or a skill folder imported first)."""
        from skvm.ir.parser import parse_module
        from skvm.ir.verifier import verify

        if common.is_skill_input(opts.input):
            from skvm.frontend.importer import import_skill

            module = import_skill(opts.input, self.engine)
            path = Path(opts.input)
            source_root = path if path.is_dir() else path.parent
            return module, source_root
        name, text = common.read_text_input(opts.input, self.stdin)
        self.engine.sources.add(name, text)
        module = parse_module(text, name)
        problems = verify(module)
        if problems:
            raise SkvmError(problems)
        return module, None

    def _export(self, opts) -> int:
        from skvm.backends import BACKENDS, get_backend, write_bundle
        from skvm.backends.conventions import HARNESSES

        if opts.target not in BACKENDS:
            known = ", ".join(BACKENDS)
            raise common.UsageError(f"unknown target '{opts.target}' (known: {known})")
        if not (opts.output or opts.install or opts.print_bundle):
            raise common.UsageError("give -o DIR, --install=user|project or --print")
        if opts.output and opts.install:
            raise common.UsageError("-o and --install are exclusive")
        module, source_root = self._load(opts)
        if self.engine.has_errors:
            return 1
        if opts.source_root:
            source_root = Path(opts.source_root)
        bundle = get_backend(opts.target, source_root, self.engine).emit(module)
        if self.engine.has_errors:
            return 1
        if opts.print_bundle:
            self.stdout.write(bundle.to_text())
        dest = None
        if opts.install:
            dest = self._install_dir(HARNESSES[opts.target], opts) / bundle.folder
        elif opts.output:
            dest = Path(opts.output)
            if dest.name != bundle.folder and opts.target in ("agentskills", "opencode"):
                self.engine.warning(
                    f"folder name '{dest.name}' differs from the skill name '{bundle.folder}'; "
                    f"{opts.target} requires them to match"
                )
        if dest is not None:
            write_bundle(bundle, dest, force=opts.force)
        return 1 if self.engine.has_errors else 0

    def _install_dir(self, h, opts) -> Path:
        """Where ``--install`` puts skills for harness ``h``."""
        pattern = h.user_dir if opts.install == "user" else h.project_dir
        if not pattern:
            raise common.UsageError(f"{h.name} has no {opts.install}-level skills folder")
        if opts.install == "user":
            base = Path(opts.root) if opts.root else Path.home()
            return base / pattern.removeprefix("~/")
        base = Path(opts.root) if opts.root else Path.cwd()
        return base / pattern


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point."""
    sys.exit(TranslateDriver(args).run())


if __name__ == "__main__":  # pragma: no cover
    main()
