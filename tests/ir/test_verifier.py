"""Every verifier diagnostic, each asserting that ALL problems of the input are reported.

Each case is a small module and the complete, exact list of messages the
verifier must produce for it (sorted), so a check that stops reporting, or
starts reporting twice, fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from skvm.diagnostics import SkvmError
from skvm.ir import types as T
from skvm.ir.attributes import Keyword, TypeAttr
from skvm.ir.operation import Module, Op, Region, Value
from skvm.ir.parser import parse_module
from skvm.ir.verifier import verify, verify_or_raise

ALL_OPS = (Path(__file__).parent / "Inputs" / "all_ops.skir").read_text(encoding="utf-8")


def _proc(body: str, params: str = "%t: text, %l: list<path>, %b: bool", results: str = "") -> str:
    head = f"proc @main({params})" + (f" -> {results}" if results else "")
    return f"skill @m {{\n  resource @r = \"r.md\" {{kind = reference}}\n  resource @s = \"s.py\" {{kind = script}}\n  {head} {{\n{body}\n  }}\n}}\n"


def _messages(text: str, allow_unregistered: bool = False) -> list[str]:
    return sorted(d.message for d in verify(parse_module(text), allow_unregistered))


#: id -> (module text, every message expected, sorted by the test).
CASES: dict[str, tuple[str, list[str]]] = {
    # ---- skill level -------------------------------------------------------------------
    "symbol-defined-twice": (
        'skill @m {\n  resource @a = "x" {kind = asset}\n  resource @a = "y" {kind = asset}\n}',
        ["symbol @a is defined twice"],
    ),
    "exec-op-at-skill-level": (
        'skill @m {\n  check.cmd ["true"]\n  check.exists "x"\n}',
        ["'check.cmd' must be inside a procedure, not at skill level",
         "'check.exists' must be inside a procedure, not at skill level"],
    ),
    "module-op-in-proc": (
        _proc('    resource @x = "x" {kind = asset}\n    meta {name = "n"}'),
        ["'skill.meta' is only allowed at skill level", "'skill.resource' is only allowed at skill level"],
    ),
    "proc-missing-return": (
        _proc('    %x = llm.gen "g" : text', results="text"),
        ["procedure @main must end with ctl.return"],
    ),
    "return-outside-proc": (
        "skill @m {\n  ctl.return\n}",
        ["'ctl.return' must be inside a procedure, not at skill level",
         "ctl.return is only allowed inside a procedure"],
    ),
    "return-count": (
        _proc("    ctl.return (%t, %t)", results="text"),
        ["ctl.return returns 2 value(s) but @main declares 1 result(s)"],
    ),
    "return-type": (
        _proc("    ctl.return (%b)", results="path"),
        ["ctl.return of %b: type bool does not match result type path"],
    ),
    "values-at-skill-level": (
        'skill @m {\n  "ctx.text"(%x) {text = "a", title = "b"} : (text) -> ()\n}',
        ["'ctx.text' takes 0 operand(s), got 1", "use of undefined value %x",
         "values can only be used inside a procedure"],
    ),
    # ---- values -------------------------------------------------------------------------
    "bad-type": (
        _proc('    %x = llm.gen "a" : list\n    %y = llm.gen "b" : text<int>\n    %z = llm.gen "c" : blob\n'
              '    %w = llm.gen "d" : json<"[1">\n    %v = llm.gen "e" : json<"3">'),
        ["bad type of %v: json type schema must be a JSON object",
         "bad type of %w: json type schema is not valid JSON: Expecting ',' delimiter: line 1 column 3 (char 2)",
         "bad type of %x: list type needs an element type: list<T>",
         "bad type of %y: type 'text' takes no parameter",
         "bad type of %z: unknown type 'blob'"],
    ),
    "defined-twice": (
        _proc('    %x = llm.gen "a" : text\n    %x = llm.gen "b" : text\n    %t = llm.gen "c" : text'),
        ["value %t is defined more than once", "value %x is defined more than once"],
    ),
    "undefined-value": (
        _proc('    %x = llm.gen "a" (%nope, %t) : text\n    tool.exec ["echo", %gone] : text'),
        ["'tool.exec' names 0 result(s) but gives 1 result type(s)"],  # replaced below
    ),
    "out-of-scope": (
        _proc("    ctl.for_each (%l) as (%e: path) {\n      %in = tool.read (%e) : text\n    }\n"
              "    check.exists (%e)\n    check.schema (%in) {schema = \"{}\"}"),
        ["value %e is used out of its scope", "value %in is used out of its scope"],
    ),
    "terminator-not-last": (
        _proc("    ctl.return\n    %x = llm.gen \"a\" : text"),
        ["'ctl.return' must be the last op of its region"],
    ),
    "yield-outside-region": (
        _proc("    ctl.yield (%t)"),
        ["ctl.yield is only allowed at the end of a control-flow region"],
    ),
    # ---- op shape -----------------------------------------------------------------------
    "unknown-op": (
        _proc('    "foo.bar"(%t) : (text) -> ()\n    foo.baz'),
        ["unknown op 'foo.bar' (use --allow-unregistered to accept it)",
         "unknown op 'foo.baz' (use --allow-unregistered to accept it)"],
    ),
    "operand-count": (
        _proc('    %x = llm.judge "q" : bool\n    tool.write "o" (%t, %t)\n    ctl.if (%b, %b) {\n    } else {\n    }'),
        ["'ctl.if' takes 1 operand(s), got 2", "'tool.write' takes 1 operand(s), got 2"],
    ),
    "result-count": (
        _proc('    %x, %y = tool.exec ["a"] : text, text\n    %z = check.cmd ["b"] : text'),
        ["'check.cmd' produces 0 result(s), got 1", "'tool.exec' produces 0 to 1 result(s), got 2"],
    ),
    "region-count": (
        _proc("    ctl.if (%b) {\n    }\n    %p = ctl.parallel {\n      ctl.yield (%t)\n    } : text"),
        ["'ctl.if' has 2 region(s), got 1", "'ctl.parallel' has at least 2 region(s), got 1"],
    ),
    "required-attribute": (
        _proc('    "tool.exec"() : () -> ()\n    "llm.gen"() : () -> ()'),
        ["'llm.gen' requires attribute 'prompt'", "'tool.exec' requires attribute 'argv'"],
    ),
    "attribute-kind": (
        _proc('    %x = llm.step 3 {caps = ["x"], max_turns = "9", tools = [1]} : text\n'
              "    ctx.rule always \"r\""),
        ["attribute 'caps' of 'llm.step': expected a list of capabilities",
         "attribute 'max_turns' of 'llm.step': expected an integer",
         "attribute 'prompt' of 'llm.step': expected a string",
         "attribute 'severity' of 'ctx.rule': expected one of must, should, never, may",
         "attribute 'tools' of 'llm.step': expected a list of strings"],
    ),
    "capability": (
        _proc('    %x = llm.gen "a" {caps = [reason.logik:L1, reason.logic:L7]} : text'),
        ["capability level L7 is not in L0..L3",
         "unknown capability primitive 'reason.logik'; did you mean reason.logic?"],
    ),
    "type-attribute": (
        'skill @m {\n  proc @p() -> list {\n    ctl.return\n  }\n}',
        ["attribute 'result_types': list type needs an element type: list<T>",
         "ctl.return returns 0 value(s) but @p declares 1 result(s)"],
    ),
    "undefined-symbol": (
        _proc('    %x = tool.script @nope : text\n    %y = ctl.call @gone : text\n    ctx.ref @missing'),
        ["reference to undefined symbol @gone", "reference to undefined symbol @missing",
         "reference to undefined symbol @nope"],
    ),
    "wrong-symbol-kind": (
        _proc('    %x = ctl.call @r : text\n    %z = tool.script @main : text\n    %y = tool.read {"resource" = @main} : text'),
        ["@main is not a resource", "@main is not a resource", "@r is not a proc"],
    ),
    # ---- dialect hooks -------------------------------------------------------------------
    "check-exists-needs-path": (_proc("    check.exists"), ["check.exists needs a path operand or a path attribute"]),
    "check-schema-json": (
        _proc('    check.schema (%t) {schema = "{nope"}'),
        ["check.schema schema is not valid JSON: Expecting property name enclosed in double quotes: "
         "line 1 column 2 (char 1)"],
    ),
    "region-must-yield": (
        _proc("    %x = ctl.if (%b) {\n    } else {\n      ctl.yield (%t)\n    } : text"),
        ["region #0 of ctl.if must end with ctl.yield of 1 value(s)"],
    ),
    "yield-count": (
        _proc("    %x = ctl.if (%b) {\n      ctl.yield (%t, %t)\n    } else {\n      ctl.yield (%t)\n    } : text"),
        ["ctl.yield yields 2 value(s) but ctl.if has 1 result(s)"],
    ),
    "if-condition-bool": (
        _proc("    ctl.if (%t) {\n      %x = llm.gen \"a\" : text\n    } else {\n    }"),
        ["ctl.if condition must be bool, got text"],
    ),
    "loop-body-args": (
        _proc("    ctl.for_each (%l) {\n      %x = llm.gen \"a\" : text\n    }\n"
              "    ctl.map (%l) as (%a: path, %c: path) {\n      %y = llm.gen \"a\" : text\n    }"),
        ["ctl.for_each body takes exactly one argument (the element)",
         "ctl.map body takes exactly one argument (the element)"],
    ),
    "loop-over-non-list": (
        _proc("    ctl.for_each (%b) as (%e: bool) {\n      %x = llm.gen \"a\" : text\n    }"),
        ["ctl.for_each iterates over a list, got bool"],
    ),
    "loop-element-type": (
        _proc("    ctl.for_each (%l) as (%e: int) {\n      %x = llm.gen \"a\" : text\n    }"),
        ["ctl.for_each element type int does not match list<path>"],
    ),
    "loop-result": (
        _proc("    %x = ctl.map (%l) as (%e: path) {\n      ctl.yield (%e)\n    } : text\n"
              "    %y = ctl.map (%l) as (%f: path) {\n      %g = llm.gen \"a\" : text\n    } : list<text>"),
        ["ctl.map result must be a list, got text",
         "ctl.map with a result needs its body to ctl.yield one value"],
    ),
    "parallel-branch-args": (
        _proc("    ctl.parallel {\n      %x = llm.gen \"a\" : text\n    } {\n      %y = llm.gen \"b\" : text\n    }"),
        [],  # replaced below: regions with arguments need the generic form
    ),
    "parallel-yield-count": (
        _proc("    %x, %y = ctl.parallel {\n      ctl.yield (%t)\n    } {\n      %z = llm.gen \"b\" : text\n"
              "    } : text, text"),
        ["ctl.parallel branches yield 1 value(s) but the op has 2 result(s)"],
    ),
    "call-arity": (
        'skill @m {\n  proc @h(%a: text) -> text {\n    ctl.return (%a)\n  }\n'
        "  proc @main(%t: text) {\n    %x, %y = ctl.call @h (%t, %t) : text, text\n  }\n}",
        ["ctl.call @h expects 2 result(s), the procedure returns 1",
         "ctl.call @h passes 2 argument(s), the procedure takes 1"],
    ),
    "judge-bool": (_proc('    %x = llm.judge "q" : text'), ["llm.judge must produce a bool"]),
    "resource-path": (
        'skill @m {\n  resource @a = "/etc/passwd" {kind = asset}\n  resource @b = "x/../../y" {kind = asset}\n}',
        ["resource path '/etc/passwd' must be relative to the skill root",
         "resource path 'x/../../y' must be relative to the skill root"],
    ),
    "exec-argv": (
        _proc('    %x = tool.exec [] : text\n    %y = tool.exec ["a", "b"] {shell} : text'),
        ["a shell tool.exec takes exactly one command line", "tool.exec needs a non-empty argv"],
    ),
    "script-kind": (_proc("    %x = tool.script @r : text"), ["tool.script runs @r, a reference, not a script"]),
}

CASES["undefined-value"] = (
    _proc('    %x = llm.gen "a" (%nope, %t) : text\n    %y = tool.exec ["echo", %gone] : text'),
    ["use of undefined value %gone", "use of undefined value %nope"],
)
CASES["parallel-branch-args"] = (
    _proc('    "ctl.parallel"() ({\n      %x = llm.gen "a" : text\n    }, as (%q: text) {\n'
          '      %y = llm.gen "b" : text\n    }) : () -> ()'),
    ["ctl.parallel branch #1 takes no arguments"],
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_problem_is_reported(case):
    """The verifier reports exactly the expected problems, all of them, each located."""
    text, expected = CASES[case]
    module = parse_module(text, "case.skir")
    diagnostics = verify(module)
    assert sorted(d.message for d in diagnostics) == sorted(expected)
    assert all(d.loc is not None and d.loc.file == "case.skir" for d in diagnostics)


def test_all_messages_of_the_verifier_are_covered():
    """Every message template in the verifier and the dialects has a case above."""
    import re

    from skvm.ir import dialects, verifier

    sources = [Path(verifier.__file__)] + sorted(Path(dialects.__file__).parent.glob("[!_]*.py"))
    produced = " | ".join(m for _, (_, ms) in CASES.items() for m in ms)
    missing = []
    for path in sources:
        for template in re.findall(r'(?:ctx\.error|self\.error)\(\s*\w+,\s*f?"([^"]+)"', path.read_text()):
            # The literal words of the template (the text outside {…}) must all appear in some message.
            words = [w for w in re.split(r"\{[^}]*\}", template) if w.strip()]
            if not any(all(w in m for w in words) for m in produced.split(" | ")):
                missing.append(f"{path.name}: {template}")
    assert not missing, missing


def test_problems_in_many_places_are_all_reported():
    """A module with problems in several procedures and regions reports each one."""
    text = _proc(
        '    %x = llm.judge "q" : text\n    %y = ctl.if (%t) {\n      check.exists\n'
        "      ctl.yield (%x)\n    } else {\n      ctl.yield (%zz)\n    } : text",
        results="text",
    )
    messages = _messages(text)
    assert messages == sorted([
        "llm.judge must produce a bool",
        "ctl.if condition must be bool, got text",
        "check.exists needs a path operand or a path attribute",
        "use of undefined value %zz",
        "procedure @main must end with ctl.return",
    ])


def test_unregistered_ops_accepted_when_allowed():
    """--allow-unregistered accepts unknown ops but still checks their values and symbols."""
    text = _proc('    %x = "foo.bar"(%t) {ref = @nowhere} : (text) -> (text)\n    "foo.baz"(%x, %q) : (text, any) -> ()')
    assert _messages(text, allow_unregistered=True) == [
        "reference to undefined symbol @nowhere",
        "use of undefined value %q",
    ]
    assert len(_messages(text)) == 4


def test_valid_sample_has_no_problems():
    """The all-ops sample is valid."""
    assert verify(parse_module(ALL_OPS)) == []


def test_verify_or_raise_carries_every_diagnostic():
    """verify_or_raise raises one SkvmError with all diagnostics."""
    module = parse_module(CASES["undefined-symbol"][0])
    with pytest.raises(SkvmError) as info:
        verify_or_raise(module)
    assert len(info.value.diagnostics) == 3
    verify_or_raise(parse_module(ALL_OPS))


def test_programmatic_ops_point_at_no_location():
    """Ops built in Python with no loc give diagnostics without a location (not a crash)."""
    module = Module("m", Region([Op.build("skill.resource", attributes={"sym_name": "r", "path": "/abs",
                                                                        "kind": Keyword("asset")})]))
    (diag,) = verify(module)
    assert diag.loc is None


def test_bad_proc_result_type_object():
    """A proc whose result_types holds a bad type is reported, not crashed on."""
    proc = Op.build("skill.proc", attributes={"sym_name": "p", "result_types": [TypeAttr(T.Type("nope"))]},
                    regions=[Region([Op.build("ctl.return", operands=["a"])], args=[Value("a", T.TEXT)])])
    messages = sorted(d.message for d in verify(Module("m", Region([proc]))))
    assert messages == [
        "attribute 'result_types': unknown type 'nope'",
        "ctl.return of %a: type text does not match result type nope",
    ]


def test_one_pass_over_the_attributes_reports_as_separate_passes_would():
    """_verify_own checks every attribute in one pass; problems keep the order of
    the separate passes (missing keys, checkers, nested values), and what it
    returns is the op's uses."""
    from skvm.ir.attributes import UNIT, Cap, DictAttr, SymbolRef, ValueRef
    from skvm.ir.verifier import Verifier, _spec_of

    op = Op.build(
        "llm.step",
        operands=("task",),
        attributes={
            # Sorted keys put the nested problem (caps) before the checker problems.
            "caps": (Cap("no.such_primitive", 1), Cap("reason.logic", 9)),
            "commands": (ValueRef("a"), "ls"),
            "marker": 3,
            "script": "not a symbol",
            "extra": DictAttr((("k", ValueRef("b")), ("s", SymbolRef("nowhere")), ("w", Keyword("x")))),
            "synthetic": UNIT,
        },
    )
    verifier = Verifier(Module("m", Region(())))
    uses = verifier._verify_own(op, _spec_of(type(op)))
    assert uses == op.uses() == ("task", "a", "b")
    assert [d.message for d in verifier.diagnostics] == [
        "'llm.step' requires attribute 'prompt'",
        "attribute 'commands' of 'llm.step': expected a list of strings",
        "attribute 'marker' of 'llm.step': expected a string",
        "attribute 'script' of 'llm.step': expected a symbol reference (@name)",
        "unknown capability primitive 'no.such_primitive'",
        "capability level L9 is not in L0..L3",
        "reference to undefined symbol @nowhere",
    ]
    plain = Op.build("ctx.text", attributes={"title": "t", "text": "x"})
    assert verifier._verify_own(plain, _spec_of(type(plain))) is plain.operands
