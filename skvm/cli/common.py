"""Plumbing shared by the command-line drivers (the only code that knows argv).

Drivers are classes taking ``args`` and streams so every path, including the
error paths, is tested in process; ``main()`` is a one-liner.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from skvm import __version__
from skvm.diagnostics import (
    Diagnostic,
    DiagnosticEngine,
    Location,
    Severity,
    SkvmError,
    SourceManager,
)

#: Refuse inputs larger than this (bytes) before reading them.
MAX_INPUT_BYTES = 64 * 1024 * 1024


class UsageError(Exception):
    """Bad command-line usage (argparse errors are turned into this)."""


class DriverArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, so drivers stay testable."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None):  # type: ignore[override]
        if message:
            raise UsageError(message.strip())
        raise _ExitRequest(status)


def count(minimum: int):
    """An argparse type: an integer of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value

    parse.__name__ = "count"
    return parse


def seconds(text: str) -> float:
    """An argparse type: a finite, positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got '{text}'") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got '{text}'")
    return value


class _ExitRequest(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class Driver:
    """Base of the command-line drivers: argv and streams in, an exit code out.

    Subclasses set ``tool`` and implement ``_run``; ``main()`` is a one-liner
    and every path, errors included, is testable in process.
    """

    tool: str = "skvm"

    def __init__(
        self,
        args: Sequence[str] | None = None,
        stdin: IO[str] | None = None,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ):
        self.argv = argv_or_sys(args)
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr

    def run(self) -> int:
        """Run the tool; return the process exit code."""
        return run_guarded(self._run, self.stderr, self.tool)

    def _run(self) -> int:
        raise NotImplementedError

    def _parse(self, parser: argparse.ArgumentParser) -> argparse.Namespace | None:
        """Parse ``argv`` into ``self.opts``; ``None`` once ``--version`` printed the version."""
        self.opts = parser.parse_args(self.argv)
        if getattr(self.opts, "version", False):
            self.stdout.write(f"{self.tool} (skvm) {__version__}\n")
            return None
        return self.opts


def read_text_input(path: str, stdin: IO[str] | None = None, display: str | None = None) -> tuple[str, str]:
    """Read a text input file (or ``-``); return (display name, text).

    Raises SkvmError for a missing, unreadable, oversized, binary or
    non-UTF-8 file, pointing at the first bad byte where there is one.
    """
    if path == "-":
        stream = stdin if stdin is not None else sys.stdin
        return display or "<stdin>", stream.read()
    name = display or path
    where = Location(name, 1, 1)
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise SkvmError(Diagnostic(Severity.ERROR, f"no such file: {path}")) from None
    except OSError as exc:
        raise SkvmError(Diagnostic(Severity.ERROR, f"cannot read {path}: {exc.strerror}")) from None
    if os.path.isdir(path):
        raise SkvmError(Diagnostic(Severity.ERROR, f"{path} is a directory"))
    if size > MAX_INPUT_BYTES:
        raise SkvmError.at(where, f"input is too large ({size} bytes; the limit is {MAX_INPUT_BYTES})")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SkvmError(Diagnostic(Severity.ERROR, f"cannot read {path}: {exc.strerror}")) from None
    return name, decode_text(data, name)


def decode_text(data: bytes, name: str) -> str:
    """Decode UTF-8 text, rejecting binary data with a located error."""
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        col = nul - (data.rfind(b"\n", 0, nul) + 1) + 1
        raise SkvmError.at(Location(name, line, col), "input is a binary file (NUL byte)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SkvmError.at(Location(name, line, col), "input is not valid UTF-8") from None
    return text.removeprefix("\ufeff")


def write_output(path: str | None, text: str, stdout: IO[str]) -> None:
    """Write the artifact to ``path`` atomically (or to stdout when None or ``-``).

    The file is written to a temporary sibling and renamed, so a failure never
    leaves partial text in place of what the user had.
    """
    if path is None or path == "-":
        stdout.write(text)
        return
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"cannot write '{path}': it is a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    except OSError as exc:
        raise UsageError(f"cannot write '{path}': {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write '{path}': {exc.strerror or exc}") from None
        raise


def make_engine(stderr: IO[str], remark_filter: str | None = None, werror: bool = False) -> DiagnosticEngine:
    """A diagnostics engine printing to ``stderr``."""
    return DiagnosticEngine(SourceManager(), stderr, remark_filter, werror)


def report_error(engine: DiagnosticEngine, error: SkvmError) -> None:
    """Print every diagnostic an error carries."""
    engine.extend(error.diagnostics)


def run_guarded(driver_main, stderr: IO[str], tool: str) -> int:
    """Run a driver body; turn usage errors into exit code 1 with a message."""
    try:
        return driver_main()
    except UsageError as exc:
        stderr.write(f"{tool}: error: {exc}\n")
        return 1
    except _ExitRequest as exc:
        return exc.status
    except KeyboardInterrupt:
        stderr.write(f"{tool}: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1


def is_skill_input(path: str) -> bool:
    """Whether ``path`` names a skill folder or a SKILL.md (to import first)."""
    if path == "-":
        return False
    p = Path(path)
    if p.is_dir():
        return True
    return p.name.lower() == "skill.md" or p.suffix.lower() == ".md"


def split_chunks(text: str) -> list[tuple[str, int]]:
    """Split ``--split-input-file`` input on ``// -----`` lines; keep line offsets."""
    chunks: list[tuple[str, int]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(text.split("\n")):
        if line.strip().startswith("// -----"):
            chunks.append(("\n".join(current), start))
            current = []
            start = number + 1
        else:
            current.append(line)
    chunks.append(("\n".join(current), start))
    return chunks


def add_common_output(parser: argparse.ArgumentParser) -> None:
    """``-o`` for drivers that write one artifact."""
    parser.add_argument("-o", dest="output", metavar="FILE", help="output file (default: stdout)")


def argv_or_sys(args: Sequence[str] | None) -> list[str]:
    """The argument list to parse."""
    return list(sys.argv[1:] if args is None else args)
