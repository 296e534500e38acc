"""Property tests (hypothesis): random well-formed modules verify and round-trip in both
forms; random and mutated text never makes the parser raise anything but SkvmError."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skvm.capabilities import PRIMITIVES
from skvm.diagnostics import SkvmError
from skvm.ir import types as T
from skvm.ir.attributes import UNIT, Cap, Keyword, SymbolRef, ValueRef
from skvm.ir.dialects.ctx import RULE_SEVERITIES
from skvm.ir.dialects.env import CONDITION_KINDS, MANAGERS
from skvm.ir.operation import OP_REGISTRY, Module, Op, Region, Value
from skvm.ir.parser import parse_module
from skvm.ir.printer import print_module
from skvm.ir.verifier import verify

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

#: Text with everything that is hard to print: comments, quotes, escapes, controls, non-ASCII.
nasty_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(['"', "\\", "/", "\n", "\t", "\r", "{", "}", "[", "]", "%", "@", "中", "😀", "\u2028"]),
        st.characters(codec="utf-8"),
    ),
    max_size=12,
)
#: Names: plain identifiers and names that need quoting.
name_prefix = st.sampled_from(["v", "x_", "odd name ", "中", "a.b-", "$", "1", 'q"'])
types = st.sampled_from([T.TEXT, T.PATH, T.JSON, T.ANY, T.INT, T.json_of('{"type": "object"}'), T.list_of(T.TEXT)])
caps = st.lists(
    st.builds(Cap, st.sampled_from(sorted(PRIMITIVES)), st.integers(0, 3)), max_size=3
).map(tuple)
floats = st.floats(allow_nan=False, allow_infinity=False)
scalar = st.one_of(nasty_text, st.integers(-(10**20), 10**20), floats, st.booleans())


class _Gen:
    """Draws ops imperatively, keeping SSA names unique and scopes right."""

    def __init__(self, draw):
        self.draw = draw
        self.counter = itertools.count()

    def name(self) -> str:
        return f"{self.draw(name_prefix)}{next(self.counter)}"

    def value(self, scope: list[Value], want: str | None = None) -> str | None:
        pool = [v for v in scope if want is None or v.type.name == want]
        return self.draw(st.sampled_from(pool)).name if pool else None

    def operands(self, scope: list[Value]) -> list[str]:
        if not scope:
            return []
        return self.draw(st.lists(st.sampled_from([v.name for v in scope]), max_size=3))

    def result(self, t=None) -> Value:
        return Value(self.name(), t if t is not None else self.draw(types))

    def op(self, scope: list[Value], depth: int) -> list[Op]:
        """One op (plus a preceding helper op when needed), appending its results to scope."""
        d = self.draw
        kinds = ["exec", "script", "read", "write", "fetch", "step", "gen", "judge", "exists",
                 "schema", "cmd", "call", "ctx"]
        if depth < 2:
            kinds += ["if", "for_each", "map", "parallel", "solid"]
        kind = d(st.sampled_from(kinds))
        ops: list[Op] = []
        if kind == "exec":
            argv = d(st.lists(st.one_of(nasty_text, st.just(SymbolRef("script"))), min_size=1, max_size=3))
            v = self.value(scope)
            if v:
                argv.append(ValueRef(v))
            ops.append(Op.build("tool.exec", results=[self.result()],
                                attributes={"argv": argv, "reads": d(st.lists(nasty_text, max_size=2)),
                                            "timeout": d(st.integers(1, 99))}))
        elif kind == "script":
            ops.append(Op.build("tool.script", results=[self.result()],
                                attributes={"script": SymbolRef("script"), "args": d(st.lists(nasty_text, max_size=2))}))
        elif kind == "read":
            v = self.value(scope)
            path = ValueRef(v) if v and d(st.booleans()) else d(nasty_text)
            ops.append(Op.build("tool.read", results=[self.result(T.TEXT)], attributes={"path": path}))
        elif kind == "write":
            v = self.value(scope)
            if v:
                ops.append(Op.build("tool.write", operands=[v], results=[self.result(T.PATH)],
                                    attributes={"path": d(nasty_text), "append": UNIT}))
        elif kind == "fetch":
            ops.append(Op.build("tool.fetch", results=[self.result()], attributes={"url": d(nasty_text)}))
        elif kind in ("step", "gen"):
            ops.append(Op.build(f"llm.{kind}", operands=self.operands(scope), results=[self.result()],
                                attributes={"prompt": d(nasty_text), "caps": d(caps),
                                            "evidence": {d(nasty_text): d(nasty_text)}}))
        elif kind == "judge":
            ops.append(Op.build("llm.judge", operands=self.operands(scope), results=[self.result(T.BOOL)],
                                attributes={"question": d(nasty_text)}))
        elif kind == "exists":
            ops.append(Op.build("check.exists", attributes={"path": d(nasty_text)}))
        elif kind == "schema":
            v = self.value(scope)
            if v:
                ops.append(Op.build("check.schema", operands=[v], attributes={"schema": '{"type": "string"}'}))
        elif kind == "cmd":
            ops.append(Op.build("check.cmd", attributes={"argv": d(st.lists(nasty_text, min_size=1, max_size=3))}))
        elif kind == "call":
            v = self.value(scope)
            if v:
                ops.append(Op.build("ctl.call", operands=[v], results=[self.result(T.TEXT)],
                                    attributes={"callee": SymbolRef("helper")}))
        elif kind == "ctx":
            ops.append(Op.build("ctx.rule", attributes={"severity": Keyword(d(st.sampled_from(RULE_SEVERITIES))),
                                                        "text": d(nasty_text)}))
        elif kind == "if":
            cond = self.value(scope, "bool")
            if cond is None:
                judge = Op.build("llm.judge", results=[self.result(T.BOOL)], attributes={"question": "?"})
                ops.append(judge)
                scope.append(judge.results[0])
                cond = judge.results[0].name
            regions = [self.region(scope, depth, yields=1) for _ in range(2)]
            ops.append(Op.build("ctl.if", operands=[cond], results=[self.result(T.TEXT)], regions=regions))
        elif kind in ("for_each", "map"):
            lst = self.value(scope, "list")
            if lst:
                arg = Value(self.name(), T.TEXT)
                yields = 1 if kind == "map" else 0
                body = self.region(scope + [arg], depth, yields=yields, args=[arg])
                results = [self.result(T.list_of(T.TEXT))] if kind == "map" else []
                attrs = {"max_width": d(st.integers(1, 8))} if kind == "map" else {}
                ops.append(Op.build(f"ctl.{kind}", operands=[lst], results=results, regions=[body],
                                    attributes=attrs))
        elif kind == "parallel":
            n = d(st.integers(2, 3))
            regions = [self.region(scope, depth, yields=1) for _ in range(n)]
            ops.append(Op.build("ctl.parallel", results=[self.result(T.TEXT) for _ in range(n)],
                                regions=regions, attributes={"kind": Keyword(d(st.sampled_from(["ilp", "tlp"])))}))
        elif kind == "solid":
            v = self.value(scope)
            operands = [v] if v else []
            body = self.region(scope, depth, yields=1)
            ops.append(Op.build("jit.solid", operands=operands, results=[self.result(T.TEXT)], regions=[body],
                                attributes={"argv": ["python", SymbolRef("script")], "hits": d(st.integers(0, 9)),
                                            "guard": d(nasty_text)}))
        for op in ops:
            scope.extend(op.results)
        return ops

    def region(self, scope: list[Value], depth: int, yields: int, args=()) -> Region:
        inner = list(scope)
        ops: list[Op] = []
        for _ in range(self.draw(st.integers(0, 3))):
            ops.extend(self.op(inner, depth + 1))
        if yields:
            local = [v for v in inner if v not in scope or v in args]
            pick = local[-1] if local else None
            if pick is None:
                gen = Op.build("llm.gen", results=[self.result(T.TEXT)], attributes={"prompt": "y"})
                ops.append(gen)
                pick = gen.results[0]
            ops.append(Op.build("ctl.yield", operands=[pick.name]))
        return Region(ops, args)


@st.composite
def modules(draw) -> Module:
    """A random valid module using every dialect."""
    g = _Gen(draw)
    ref_name = draw(nasty_text) + "_ref"
    top: list[Op] = [
        Op.build("skill.meta", attributes={"name": draw(nasty_text), "description": draw(nasty_text),
                                           "metadata": {draw(nasty_text): draw(scalar)}}),
        Op.build("skill.resource", attributes={"sym_name": "script", "path": "scripts/s.py",
                                               "kind": Keyword("script")}),
        Op.build("skill.resource", attributes={"sym_name": ref_name, "path": "ref.md",
                                               "kind": Keyword("reference"), "lazy": UNIT}),
        Op.build("ctx.ref", attributes={"resource": SymbolRef(ref_name), "when": draw(nasty_text)}),
        Op.build("env.bind", attributes={"manager": Keyword("bin"), "package": draw(nasty_text),
                                         "status": Keyword(draw(st.sampled_from(["present", "missing", "unknown"]))),
                                         "install": draw(st.lists(nasty_text, max_size=2))}),
        Op.build("env.require", attributes={"manager": Keyword(draw(st.sampled_from(MANAGERS))),
                                            "package": draw(nasty_text)}),
        Op.build("env.if", attributes={"kind": Keyword(draw(st.sampled_from(CONDITION_KINDS))),
                                       "value": draw(nasty_text)},
                 regions=[Region([Op.build("ctx.text", attributes={"title": draw(nasty_text),
                                                                  "text": draw(nasty_text)})]), Region()]),
        Op.build("ctx.example", attributes={"code": draw(nasty_text), "lang": "bash"}),
        Op.build("skill.proc", attributes={"sym_name": "helper", "result_types": [T.TEXT]},
                 regions=[Region([Op.build("ctl.return", operands=["i"])], args=[Value("i", T.TEXT)])]),
    ]
    params = [Value(g.name(), T.TEXT), Value(g.name(), T.list_of(T.PATH)), Value(g.name(), T.BOOL)]
    scope = list(params)
    body: list[Op] = []
    for _ in range(draw(st.integers(0, 8))):
        body.extend(g.op(scope, 0))
    body.append(Op.build("ctl.return", operands=[params[0].name]))
    proc_name = draw(st.sampled_from(["main", "odd proc", "中文"]))
    top.append(Op.build("skill.proc", attributes={"sym_name": proc_name, "result_types": [T.TEXT]},
                        regions=[Region(body, params)]))
    draw(st.randoms()).shuffle(top)
    return Module(draw(st.sampled_from(["m", "skill name", "中"])), Region(top))


@SETTINGS
@given(modules())
def test_random_modules_verify_and_round_trip(module):
    """Generated modules are valid and parse(print(m)) == m in both forms."""
    assert verify(module) == []
    for generic in (False, True):
        text = print_module(module, generic=generic)
        assert parse_module(text) == module, text


def test_generator_covers_every_dialect():
    """Across examples the generator produces every op kind."""
    seen: set[str] = set()

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(modules())
    def collect(module):
        seen.update(op.name for op in module.walk())

    collect()
    assert seen >= set(OP_REGISTRY), "extend the generator for new ops"


SEED = (
    'skill @m {\n  meta {name = "n // x"}\n  resource @s = "s.py" {kind = script}\n'
    '  proc @main(%t: text, %l: list<path>) -> text {\n'
    '    %a = tool.exec ["python", @s, %t] {reads = ["a"]} : text\n'
    '    %b = llm.step "p \\"q\\" 中" (%a) {caps = [reason.logic:L2]} : json<"{}">\n'
    "    %r = ctl.map (%l) {max_width = 2} as (%f: path) {\n      ctl.yield (%f)\n    } : list<path>\n"
    '    "x.y"(%a) ({\n    }) : (text) -> ()\n    ctl.return (%a) loc("S.md":1:2)\n  }\n}\n'
)


def _parse_only_diagnostics(text: str) -> None:
    try:
        module = parse_module(text)
    except SkvmError as exc:
        assert exc.diagnostics and all(d.loc is not None for d in exc.diagnostics)
        return
    verify(module, allow_unregistered=True)  # must not crash either
    print_module(module)


@SETTINGS
@given(st.data())
def test_mutated_text_only_raises_diagnostics(data):
    """Inserting, deleting and replacing characters never crashes the parser."""
    text = data.draw(st.sampled_from([SEED, print_module(parse_module(SEED), generic=True)]))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = data.draw(st.one_of(st.sampled_from(list('{}[]()<>%@":,=!-/\\\n') + ["//", "else", "as", "loc"]),
                                    st.text(max_size=3)))
        if action == "insert":
            text = text[:pos] + chunk + text[pos:]
        elif action == "delete":
            text = text[:pos] + text[pos + len(chunk) + 1:]
        else:
            text = text[:pos] + chunk + text[pos + len(chunk):]
    _parse_only_diagnostics(text)


@SETTINGS
@given(st.text(max_size=200))
def test_random_text_only_raises_diagnostics(text):
    """Arbitrary unicode never crashes the parser."""
    _parse_only_diagnostics(text)


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list('skill@m{}"ab%=:,()[]<>! \n/-.0123456789')), max_size=120))
def test_fast_lexer_matches_lark(text):
    """The one-regex lexer gives the same tokens (types, text, positions) as Lark's basic lexer."""
    from lark import Lark
    from lark.exceptions import UnexpectedCharacters

    from skvm.ir import parser as P

    reference = _reference_lexer()
    ours = P._parser()
    try:
        expected = [(t.type, str(t), t.line, t.column) for t in reference.lex(text)]
    except UnexpectedCharacters:
        expected = None
    try:
        from lark.lexer import LexerState, TextSlice

        lexer = P._driver().lexer
        got = [(t.type, str(t), t.line, t.column) for t in lexer.lex(LexerState(TextSlice(text, 0, len(text))), None)]
    except (UnexpectedCharacters, P._ParseFailure):
        got = None
    if expected is not None and got is None:
        # Only our nesting limit may refuse what Lark's lexer accepts.
        assert sum(text.count(c) for c in "[{(") > P.MAX_NESTING
        return
    assert got == expected
    assert isinstance(ours, Lark)


_REFERENCE = []


def _reference_lexer():
    if not _REFERENCE:
        from lark import Lark

        from skvm.ir import parser as P

        _REFERENCE.append(Lark(P._grammar_text(), parser="lalr", lexer="basic",
                               start=["start", "op_start", "type_start", "attr_start"]))
    return _REFERENCE[0]
