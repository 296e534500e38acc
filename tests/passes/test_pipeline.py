"""Pipeline text: parsing with typed options, canonical printing, errors with columns."""

from __future__ import annotations

import attrs
import pytest

from skvm.diagnostics import Location, SkvmError
from skvm.passes.base import ModulePass
from skvm.passes.pipeline import PseudoPass, parse_pipeline, print_pipeline
from skvm.passes.registry import NAMED_PIPELINES, expand_named


@attrs.frozen
class OptionsPass(ModulePass):
    """A pass with one option of each supported kind."""

    name = "test-options"
    summary = "test pass with typed options"

    width: int = 4
    fast: bool = False
    label: str = "x"
    tags: tuple[str, ...] = ()
    ratio: float = 0.5
    limit: int | None = None

    def run(self, module, am, ctx):
        """Change nothing."""
        return self.unchanged(module)


@pytest.fixture(autouse=True)
def _registered(register_pass):
    register_pass(OptionsPass)


def _error(text: str) -> tuple[str, int]:
    with pytest.raises(SkvmError) as info:
        parse_pipeline(text)
    (diag,) = info.value.diagnostics
    assert diag.loc is not None and diag.loc.file == "<pipeline>" and diag.loc.line == 1
    return diag.message, diag.loc.col


def test_options_are_typed():
    """Each option value is converted to its field's type."""
    (p,) = parse_pipeline("test-options{width=8 fast label=hi tags=a,b,c ratio=0.25 limit=3}")
    assert p == OptionsPass(width=8, fast=True, label="hi", tags=("a", "b", "c"), ratio=0.25, limit=3)


@pytest.mark.parametrize("raw, value", [("true", True), ("1", True), ("on", True), ("no", False), ("False", False)])
def test_bool_spellings(raw, value):
    """Booleans accept true/false, 1/0, yes/no, on/off."""
    assert parse_pipeline(f"test-options{{fast={raw}}}")[0].fast is value


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("test-options", "test-options"),
        ("test-options{}", "test-options"),
        ("test-options{width=4}", "test-options"),  # a default is not printed
        (" test-options{ tags=b,a   width=9 } ", "test-options{width=9 tags=b,a}"),
        ("test-options{fast},print<effects>", "test-options{fast=true},print<effects>"),
        ("require<effects>,invalidate<effects>,print<dep-graph>", "require<effects>,invalidate<effects>,print<dep-graph>"),
        ("test-options{label=a_b-c ratio=2.0 limit=-1}", "test-options{label=a_b-c ratio=2.0 limit=-1}"),
    ],
)
def test_round_trip_is_canonical(text, canonical):
    """Printing a parsed pipeline gives canonical text that parses to the same pipeline."""
    parsed = parse_pipeline(text)
    assert print_pipeline(parsed) == canonical
    assert parse_pipeline(canonical) == parsed
    assert print_pipeline(parse_pipeline(canonical)) == canonical


def test_pseudo_passes_parse():
    """require/invalidate/print take an analysis name."""
    assert parse_pipeline("require<effects>,print<dep-graph>") == [
        PseudoPass("require", "effects"),
        PseudoPass("print", "dep-graph"),
    ]


def test_named_pipelines_expand_in_place():
    """A named pipeline expands to its passes wherever it appears."""
    expanded = print_pipeline(parse_pipeline("test-options,default"))
    assert expanded == ",".join(["test-options", print_pipeline(parse_pipeline(expand_named("default")))])
    assert parse_pipeline("O0") == []
    assert set(NAMED_PIPELINES) >= {"O0", "O1", "O2", "default"}


def test_empty_pipeline():
    """Empty text is an empty pipeline."""
    assert parse_pipeline("") == [] and parse_pipeline("  ") == []


@pytest.mark.parametrize(
    "text, message, col",
    [
        ("canonicalize,nope", "unknown pass 'nope'", 14),
        ("canonicalise", "unknown pass 'canonicalise'; did you mean 'canonicalize'?", 1),
        ("test-options{wdth=3}", "pass 'test-options' has no option 'wdth' (options: fast, label, limit, ratio, tags, width)", 14),
        ("test-options{fast width=abc}", "option 'width' expects int, got 'abc'", 19),
        ("test-options{ratio=x}", "option 'ratio' expects float, got 'x'", 14),
        ("test-options{fast=maybe}", "option 'fast' expects bool, got 'maybe'", 14),
        ("test-options{width}", "option 'width' needs a value", 14),
        ("test-options{width=1", "unterminated '{' or '<' in pipeline", 21),
        ("test-options}", "unbalanced '}' in pipeline", 13),
        ("canonicalize,,dce", "empty pass name in pipeline", 14),
        ("print<nope>", "unknown analysis 'nope'", 1),
        ("show<effects>", "unknown pseudo-pass 'show<effects>'", 1),
        ("canonicalize, bogus{a=1}", "unknown pass 'bogus'", 15),
    ],
)
def test_errors_are_located(text, message, col):
    """Bad pipeline text gives one diagnostic at the right column."""
    got_message, got_col = _error(text)
    assert got_message.startswith(message)
    assert got_col == col


def test_error_location_type():
    """Pipeline diagnostics point into the pseudo-file <pipeline>."""
    with pytest.raises(SkvmError) as info:
        parse_pipeline("nope")
    assert info.value.diagnostics[0].loc == Location("<pipeline>", 1, 1)
