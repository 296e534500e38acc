"""Every op kind builds, prints and parses back equal, in custom and generic form."""

from __future__ import annotations

from pathlib import Path

import pytest

import skvm.ir.dialects  # noqa: F401  (registers the ops)
from skvm.diagnostics import Location, SkvmError
from skvm.ir import types as T
from skvm.ir.attributes import UNIT, Cap, DictAttr, Keyword, SymbolRef, TypeAttr, ValueRef
from skvm.ir.operation import OP_REGISTRY, Module, Op, Region, UnregisteredOp, Value
from skvm.ir.parser import parse_attribute, parse_module, parse_op, parse_type
from skvm.ir.printer import print_module, print_op
from skvm.ir.verifier import verify

INPUTS = Path(__file__).parent / "Inputs"
ALL_OPS = (INPUTS / "all_ops.skir").read_text(encoding="utf-8")

#: Strings that must survive printing and parsing.
NASTY = [
    "",
    "a // not a comment",
    "//",
    'say "hi"',
    "back\\slash \\n not a newline",
    "new\nline",
    "tab\there",
    "cr\r\nlf",
    "ctl \x00 \x01 \x1b \x1f \x7f",
    "\u2028 \u2029",
    "中文字符",
    "emoji 😀👩‍👩‍👧",
    "{braces} [brackets] (parens) <angles>",
    'loc("x":1:2)',
    "} else {",
    "\\u0041 stays as six characters",
]


def _round_trip(module: Module) -> None:
    for generic in (False, True):
        text = print_module(module, generic=generic)
        again = parse_module(text)
        assert again == module, text
        assert print_module(again, generic=generic) == text


def _module(*ops: Op, name: str = "m") -> Module:
    return Module(name, Region(ops))


# ---- the sample module covers every op ---------------------------------------------


def test_sample_holds_every_registered_op():
    """The all-ops sample uses every registered op kind (so the tests below cover them)."""
    module = parse_module(ALL_OPS)
    assert {op.name for op in module.walk()} == set(OP_REGISTRY)


def test_sample_is_valid_and_canonical():
    """The sample verifies and prints exactly as written."""
    module = parse_module(ALL_OPS)
    assert verify(module) == []
    assert print_module(module) == ALL_OPS


def test_sample_round_trips_in_both_forms():
    """parse(print(m)) == m for the sample, custom and generic."""
    _round_trip(parse_module(ALL_OPS))


def test_generic_and_custom_parse_to_the_same_module():
    """The generic text of a module parses to the module the custom text gives."""
    module = parse_module(ALL_OPS)
    assert parse_module(print_module(module, generic=True)) == module
    assert "\"llm.step\"(%a, %task)" in print_module(module, generic=True)


@pytest.mark.parametrize("name", sorted(OP_REGISTRY))
def test_each_op_prints_and_parses_alone(name):
    """Each op of the sample round-trips through print_op/parse_op in both forms."""
    module = parse_module(ALL_OPS)
    op = next(o for o in module.walk() if o.name == name)
    for generic in (False, True):
        text = print_op(op, generic=generic)
        assert parse_op(text) == op, text
    assert type(op) is OP_REGISTRY[name]


# ---- building ops from Python -------------------------------------------------------

#: name -> Op.build keyword arguments (one per op kind).
BUILDS = {
    "skill.meta": dict(attributes={"name": "x", "description": "d", "allowed_tools": ["Read"]}),
    "skill.resource": dict(attributes={"sym_name": "r", "path": "scripts/r.py", "kind": Keyword("script")}),
    "skill.proc": dict(
        attributes={"sym_name": "p", "result_types": [T.TEXT]},
        regions=[Region([Op.build("ctl.return", operands=["a"])], args=[Value("a", T.TEXT)])],
    ),
    "ctx.text": dict(attributes={"title": "T", "text": "body"}),
    "ctx.rule": dict(attributes={"severity": Keyword("must"), "text": "never"}),
    "ctx.example": dict(attributes={"code": "ls", "lang": "bash"}),
    "ctx.ref": dict(attributes={"resource": SymbolRef("r"), "when": "w"}),
    "env.require": dict(attributes={"manager": Keyword("pip"), "package": "pypdf", "optional": UNIT}),
    "env.bind": dict(attributes={"manager": Keyword("bin"), "package": "jq", "status": Keyword("missing")}),
    "env.if": dict(
        attributes={"kind": Keyword("os"), "value": "linux", "negate": UNIT},
        regions=[Region([Op.build("ctx.text", attributes={"title": "a", "text": "b"})]), Region()],
    ),
    "tool.exec": dict(results=[Value("o", T.TEXT)], attributes={"argv": ["ls", ValueRef("a")], "timeout": 5}),
    "tool.script": dict(results=[Value("o", T.TEXT)], attributes={"script": SymbolRef("r"), "args": ["-v"]}),
    "tool.read": dict(results=[Value("o", T.TEXT)], attributes={"path": "n.md"}),
    "tool.write": dict(operands=["a"], results=[Value("o", T.PATH)], attributes={"path": "o.txt", "append": UNIT}),
    "tool.fetch": dict(results=[Value("o", T.TEXT)], attributes={"url": "https://x", "method": "GET"}),
    "llm.step": dict(
        operands=["a"],
        results=[Value("o", T.json_of('{"type": "array"}'))],
        attributes={"prompt": "p", "caps": [Cap("reason.logic", 2)], "tools": ["Read"], "max_turns": 3},
    ),
    "llm.gen": dict(results=[Value("o", T.list_of(T.TEXT))], attributes={"prompt": "g"}),
    "llm.judge": dict(operands=["a"], results=[Value("o", T.BOOL)], attributes={"question": "q?"}),
    "ctl.if": dict(
        operands=["c"],
        results=[Value("o", T.TEXT)],
        regions=[Region([Op.build("ctl.yield", operands=["a"])]), Region([Op.build("ctl.yield", operands=["a"])])],
    ),
    "ctl.for_each": dict(operands=["l"], regions=[Region([], args=[Value("e", T.PATH)])]),
    "ctl.map": dict(
        operands=["l"],
        results=[Value("o", T.list_of(T.TEXT))],
        attributes={"max_width": 2, "collect_errors": UNIT},
        regions=[Region([Op.build("ctl.yield", operands=["e"])], args=[Value("e", T.TEXT)])],
    ),
    "ctl.parallel": dict(
        results=[Value("o1", T.TEXT), Value("o2", T.TEXT)],
        attributes={"kind": Keyword("ilp")},
        regions=[Region([Op.build("ctl.yield", operands=["a"])]), Region([Op.build("ctl.yield", operands=["a"])])],
    ),
    "ctl.yield": dict(operands=["a", "b"]),
    "ctl.return": dict(operands=["a"]),
    "ctl.call": dict(operands=["a"], results=[Value("o", T.TEXT)], attributes={"callee": SymbolRef("p")}),
    "check.exists": dict(attributes={"path": "out.txt"}),
    "check.schema": dict(operands=["a"], attributes={"schema": '{"type": "object"}'}),
    "check.cmd": dict(attributes={"argv": ["test", "-s", ValueRef("a")], "shell": UNIT}),
    "jit.solid": dict(
        operands=["a"],
        results=[Value("o", T.TEXT)],
        attributes={"argv": ["python", SymbolRef("r"), ValueRef("a")], "hits": 2, "guard": "g"},
        regions=[Region([Op.build("ctl.yield", operands=["a"])])],
    ),
}


def test_build_table_covers_every_op():
    """The build table names every registered op."""
    assert set(BUILDS) == set(OP_REGISTRY)


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_built_op_round_trips(name):
    """An op built from Python prints and parses back equal, custom and generic."""
    op = Op.build(name, loc=Location("SKILL.md", 3, 7), **BUILDS[name])
    assert isinstance(op, OP_REGISTRY[name])
    for generic in (False, True):
        text = print_op(op, generic=generic)
        assert parse_op(text) == op, text
        assert 'loc("SKILL.md":3:7)' in text


def test_build_converts_python_values():
    """Lists become tuples, dicts DictAttrs and types TypeAttrs; attributes are sorted."""
    op = Op.build("skill.meta", attributes={"z": [1, [2]], "a": {"k": T.TEXT}})
    assert op.attributes.items[0][0] == "a"
    assert op.attr("z") == (1, (2,))
    assert op.attr("a") == DictAttr((("k", TypeAttr(T.TEXT)),))
    with pytest.raises(TypeError):
        Op.build("skill.meta", attributes={"x": None})


def test_unknown_name_builds_unregistered_op():
    """An unknown op name builds an UnregisteredOp that always prints generically."""
    op = Op.build("foo.bar", operands=["a"], attributes={"k": 1})
    assert isinstance(op, UnregisteredOp) and not op.registered
    assert print_op(op) == '"foo.bar"(%a) {k = 1} : (any) -> ()'
    assert parse_op(print_op(op)) == op


# ---- strings, names, keys -------------------------------------------------------------


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_nasty_strings_survive(text):
    """Strings with comments, quotes, control characters and non-ASCII text round-trip."""
    module = _module(
        Op.build("skill.meta", attributes={"description": text, text or "k": text}),
        Op.build("skill.resource", attributes={"sym_name": "r", "path": text, "kind": Keyword("other")}),
        Op.build("ctx.text", attributes={"title": text, "text": text}, loc=Location(text, 1, 2)),
        Op.build("ctx.example", attributes={"code": text, "lang": text}),
    )
    _round_trip(module)
    printed = print_module(module)
    assert "\n" not in printed.strip("\n").replace("\n  ", "").replace("\n}", "")


@pytest.mark.parametrize(
    "name",
    ["plain", "with space", "中文", "😀", 'q"uote', "a/b", "1starts_with_digit", "kebab-name", "dot.ted", "$x"],
)
def test_symbol_and_value_names_round_trip(name):
    """Symbol and value names that need quoting are quoted and parse back."""
    proc = Op.build(
        "skill.proc",
        attributes={"sym_name": name, "result_types": [T.TEXT]},
        regions=[Region([Op.build("ctl.return", operands=[name])], args=[Value(name, T.TEXT)])],
    )
    module = _module(
        Op.build("skill.resource", attributes={"sym_name": name + "_r", "path": "p", "kind": Keyword("asset")}),
        proc,
        name=name,
    )
    _round_trip(module)


@pytest.mark.parametrize("key", ["skill", "as", "else", "loc", "true", "with space", "1x", "a.b", "中"])
def test_attribute_keys_that_need_quotes(key):
    """Keys that are reserved words or not identifiers are quoted."""
    op = Op.build("skill.meta", attributes={key: 1, "metadata": {key: UNIT}})
    assert parse_op(print_op(op)) == op


# ---- types and attributes --------------------------------------------------------------

TYPES = [
    T.TEXT, T.PATH, T.JSON, T.BOOL, T.INT, T.ANY,
    T.list_of(T.TEXT), T.list_of(T.list_of(T.PATH)),
    T.json_of('{"type": "object", "properties": {"a": {"type": "string"}}}'),
    T.list_of(T.json_of("{}")),
]


@pytest.mark.parametrize("t", TYPES, ids=str)
def test_types_round_trip(t):
    """Every type kind prints and parses back."""
    assert parse_type(str(t)) == t
    assert T.validate_type(t) is None


ATTRIBUTES = [
    0, -5, 12345678901234567890, 1.5, -0.25, 1e-09, 2.5e+300, True, False,
    "s", (), (1, "a", (True,)), SymbolRef("x"), SymbolRef("odd name"), ValueRef("v"),
    ValueRef("odd value"), Keyword("must"), Cap("reason.logic", 3), TypeAttr(T.list_of(T.TEXT)),
    DictAttr.of({"a": 1, "flag": UNIT, "nested": {"b": [SymbolRef("y")]}}),
]


@pytest.mark.parametrize("value", ATTRIBUTES, ids=repr)
def test_attributes_round_trip(value):
    """Every attribute kind prints and parses back (as a value and inside an op)."""
    from skvm.ir.printer import attr_text

    assert parse_attribute(attr_text(value)) == value
    op = Op.build("foo.any", attributes={"v": value})
    assert parse_op(print_op(op)) == op


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_finite_floats_cannot_be_printed(value):
    """inf and nan have no text form: printing refuses rather than writing bad text."""
    from skvm.ir.printer import attr_text

    with pytest.raises(ValueError):
        attr_text(value)


# ---- locations and positions -------------------------------------------------------------


def test_locations_round_trip_and_positions_are_not_compared():
    """loc(...) round-trips; the .skir parse position is kept but not compared."""
    text = 'skill @m {\n  ctx.text "a" "b" loc("dir/SKILL \\"1\\".md":10:3)\n}\n'
    module = parse_module(text)
    op = module.ops[0]
    assert op.loc == Location('dir/SKILL "1".md', 10, 3)
    assert op.pos == Location("<input>", 2, 3)
    assert op.location == op.loc
    shifted = parse_module("\n\n" + text, "other.skir")
    assert shifted == module and shifted.ops[0].pos == Location("other.skir", 4, 3)
    assert print_module(module) == text


def test_comments_are_ignored_everywhere():
    """``//`` comments may appear between any tokens and are dropped."""
    text = (
        "// head\nskill @m { // after brace\n  ctx.text // between\n \"a\" // x\n \"b\"\n"
        "// before close\n} // trailing\n// last"
    )
    assert print_module(parse_module(text)) == 'skill @m {\n  ctx.text "a" "b"\n}\n'


def test_parse_errors_are_located_diagnostics():
    """A syntax error is an SkvmError with one located diagnostic."""
    with pytest.raises(SkvmError) as info:
        parse_module('skill @m {\n  ctx.text "a" ,\n}\n', "f.skir")
    (diag,) = info.value.diagnostics
    assert diag.loc == Location("f.skir", 2, 16)
    assert diag.message.startswith("unexpected ','")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty input"),
        ("skill @m {", "unexpected end of input"),
        ('skill @m { ctx.text "a" "b" "c" }', "takes at most 2 positional argument(s), got 3"),
        ('skill @m { ctx.text "a" }', "'ctx.text' expects its 'text' argument"),
        ('skill @m { ctx.text "a" "b" {title = "c"} }', "attribute 'title' given both positionally"),
        ("skill @m { meta {a = 1, a = 2} }", "duplicate attribute 'a'"),
        ('skill @m { resource @r = "p" {path = "q"} }', "'path' is given by the resource syntax"),
        ('skill @m { foo.bar "x" }', "unknown op 'foo.bar' cannot take positional arguments"),
        ("skill @m { %a = llm.gen \"x\" }", "names 1 result(s) but gives 0 result type(s)"),
        ('skill @m { ctx.text "a" \x00 }', "binary"),
        ("skill @m { ctx.text # }", "unexpected character '#'"),
        ('skill @m { proc @p() as (%x: text) { } }', "parameters go in its header"),
    ],
)
def test_parse_error_messages(text, message):
    """Each parse problem gives its own message."""
    with pytest.raises(SkvmError) as info:
        parse_module(text)
    assert message in str(info.value)
    assert all(d.loc is not None for d in info.value.diagnostics)


def test_deep_nesting_is_a_diagnostic():
    """Absurdly deep nesting gives a diagnostic, not a RecursionError."""
    text = "skill @m { meta {a = " + "[" * 50000 + "]" * 50000 + "} }"
    with pytest.raises(SkvmError):
        parse_module(text)
