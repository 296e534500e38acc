"""One diagnostics engine for every tool: errors, warnings, notes and remarks.

Diagnostics render like a compiler's::

    path:line:col: error: message
    <the source line>
          ^

Code that finds a problem reports it to a :class:`DiagnosticEngine`; code that
cannot go on raises :class:`SkvmError` carrying the diagnostic. Drivers catch
``SkvmError``, print and exit 1, so bad input never produces a traceback.
"""

from __future__ import annotations

import enum
import re
import sys
from collections.abc import Callable, Iterable
from typing import IO

import attrs


@attrs.frozen(order=True)
class Location:
    """A position in a source file: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class Severity(enum.Enum):
    """How serious a diagnostic is."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"
    REMARK = "remark"


@attrs.frozen
class Diagnostic:
    """One message about the input, optionally located, with attached notes."""

    severity: Severity
    message: str
    loc: Location | None = None
    notes: tuple[Diagnostic, ...] = ()
    # For remarks: the pass that emitted it (filtered by -Rpass=<regex>).
    category: str = ""


class SkvmError(Exception):
    """A fatal problem with the input; carries the diagnostics to report."""

    def __init__(self, diagnostics: Diagnostic | Iterable[Diagnostic]):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = (diagnostics,)
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__("; ".join(d.message for d in self.diagnostics))

    @classmethod
    def at(cls, loc: Location | None, message: str) -> SkvmError:
        """Build an error with a single located error diagnostic."""
        return cls(Diagnostic(Severity.ERROR, message, loc))


class SourceManager:
    """Remembers the text of files so diagnostics can quote the source line."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {}

    def add(self, name: str, text: str, line_offset: int = 0) -> None:
        """Register ``text`` as the contents of ``name``.

        ``line_offset`` lets a split chunk (``--split-input-file``) be registered
        under its original file while diagnostics keep whole-file line numbers.
        """
        lines = text.split("\n")
        if line_offset:
            existing = self._lines.get(name, [])
            needed = line_offset + len(lines)
            if len(existing) < needed:
                existing = existing + [""] * (needed - len(existing))
            existing[line_offset : line_offset + len(lines)] = lines
            self._lines[name] = existing
        else:
            self._lines[name] = lines

    def line(self, name: str, line: int) -> str | None:
        """Return line ``line`` (1-based) of ``name`` or None when unknown."""
        lines = self._lines.get(name)
        if lines is None or not 1 <= line <= len(lines):
            return None
        return lines[line - 1].rstrip("\r")


def render(diag: Diagnostic, sources: SourceManager | None = None) -> str:
    """Render a diagnostic (and its notes) as compiler-style text."""
    out: list[str] = []
    prefix = f"{diag.loc}: " if diag.loc else ""
    out.append(f"{prefix}{diag.severity.value}: {diag.message}")
    if diag.loc and sources is not None:
        text = sources.line(diag.loc.file, diag.loc.line)
        if text is not None:
            shown = text.expandtabs(1) if "\t" in text else text
            out.append(shown)
            caret_col = max(1, min(diag.loc.col, len(shown) + 1))
            out.append(" " * (caret_col - 1) + "^")
    for note in diag.notes:
        out.append(render(note, sources))
    return "\n".join(out)


class DiagnosticEngine:
    """Collects diagnostics and prints them (or keeps them for verification).

    Args:
        sources: where to find the quoted source lines.
        stream: where diagnostics are printed; None keeps them silent.
        remark_filter: regex on a remark's category; remarks that do not match
            are dropped (``-Rpass=legalize``). None drops every remark.
        warnings_as_errors: promote warnings (``-Werror``).
    """

    def __init__(
        self,
        sources: SourceManager | None = None,
        stream: IO[str] | None = sys.stderr,
        remark_filter: str | None = None,
        warnings_as_errors: bool = False,
    ) -> None:
        self.sources = sources if sources is not None else SourceManager()
        self.stream = stream
        self.remark_filter = re.compile(remark_filter) if remark_filter else None
        self.warnings_as_errors = warnings_as_errors
        self.diagnostics: list[Diagnostic] = []
        self.handlers: list[Callable[[Diagnostic], None]] = []

    # -- reporting -----------------------------------------------------
    def report(self, diag: Diagnostic) -> None:
        """Record (and print) one diagnostic."""
        if diag.severity is Severity.REMARK:
            if self.remark_filter is None or not self.remark_filter.search(diag.category):
                return
        if diag.severity is Severity.WARNING and self.warnings_as_errors:
            diag = attrs.evolve(diag, severity=Severity.ERROR)
        self.diagnostics.append(diag)
        for handler in self.handlers:
            handler(diag)
        if self.stream is not None:
            self.stream.write(render(diag, self.sources) + "\n")

    def error(self, message: str, loc: Location | None = None, notes=()) -> None:
        """Report an error."""
        self.report(Diagnostic(Severity.ERROR, message, loc, tuple(notes)))

    def warning(self, message: str, loc: Location | None = None, notes=()) -> None:
        """Report a warning."""
        self.report(Diagnostic(Severity.WARNING, message, loc, tuple(notes)))

    def note(self, message: str, loc: Location | None = None) -> None:
        """Report a free-standing note."""
        self.report(Diagnostic(Severity.NOTE, message, loc))

    def remark(self, category: str, message: str, loc: Location | None = None) -> None:
        """Report an optimization remark from pass ``category``."""
        self.report(
            Diagnostic(Severity.REMARK, f"{category}: {message}", loc, (), category)
        )

    def extend(self, diags: Iterable[Diagnostic]) -> None:
        """Report several diagnostics."""
        for d in diags:
            self.report(d)

    # -- queries ---------------------------------------------------------
    @property
    def error_count(self) -> int:
        """Number of errors reported so far."""
        return sum(1 for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def has_errors(self) -> bool:
        """Whether any error was reported."""
        return self.error_count > 0

    def of(self, severity: Severity) -> list[Diagnostic]:
        """The diagnostics of one severity."""
        return [d for d in self.diagnostics if d.severity is severity]


# -- --verify-diagnostics ------------------------------------------------

_EXPECTED_RE = re.compile(
    r"//\s*expected-(error|warning|note|remark)(@[+-]?\d+|@above|@below)?\s*\{\{(.*?)\}\}"
)


@attrs.frozen
class ExpectedDiagnostic:
    """An ``// expected-<severity> {{text}}`` annotation in an input file."""

    severity: Severity
    line: int
    text: str
    annotation_line: int


def parse_expectations(text: str) -> list[ExpectedDiagnostic]:
    """Find MLIR-style expected-diagnostic annotations in ``text``.

    ``// expected-error {{msg}}`` expects ``msg`` on the same line;
    ``@+N`` / ``@-N`` are relative offsets, ``@above``/``@below`` mean -1/+1.
    """
    found: list[ExpectedDiagnostic] = []
    for number, line in enumerate(text.split("\n"), start=1):
        for m in _EXPECTED_RE.finditer(line):
            severity = Severity(m.group(1))
            offset = m.group(2)
            target = number
            if offset == "@above":
                target = number - 1
            elif offset == "@below":
                target = number + 1
            elif offset:
                target = number + int(offset[1:])
            found.append(ExpectedDiagnostic(severity, target, m.group(3), number))
    return found


def check_expectations(
    file: str,
    expected: list[ExpectedDiagnostic],
    produced: list[Diagnostic],
    engine: DiagnosticEngine,
) -> bool:
    """Match produced diagnostics against expectations; report mismatches.

    Returns True when every expectation was met and nothing unexpected was
    produced. Mismatches are reported as errors on ``engine``.
    """
    remaining = list(produced)
    ok = True
    for exp in expected:
        match = None
        for diag in remaining:
            if (
                diag.severity is exp.severity
                and diag.loc is not None
                and diag.loc.line == exp.line
                and exp.text in diag.message
            ):
                match = diag
                break
        if match is None:
            ok = False
            engine.error(
                f"expected {exp.severity.value} \"{exp.text}\" was not produced",
                Location(file, exp.annotation_line, 1),
            )
        else:
            remaining.remove(match)
    for diag in remaining:
        if diag.severity in (Severity.ERROR, Severity.WARNING):
            ok = False
            where = diag.loc if diag.loc is not None else Location(file, 1, 1)
            engine.error(
                f"unexpected {diag.severity.value}: {diag.message}", where
            )
    return ok
