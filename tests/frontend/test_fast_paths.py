"""Fast paths of the front end give the same answers as the general ones they skip."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skvm.frontend.capability_rules import (
    _ANYWHERE_LITERALS,
    _SCAN_LITERALS,
    CAP_RULES,
    CASE_FOLD_TRAPS,
    CapFinding,
    _first_match,
    _Text,
    step_capabilities,
)
from skvm.frontend.dependencies import _parsed_imports, python_imports
from skvm.frontend.lower import _PLATFORM_OPENING, PLATFORM_CONDITIONS
from skvm.ir.attributes import (
    UNIT,
    Cap,
    DictAttr,
    Keyword,
    SymbolRef,
    TypeAttr,
    ValueRef,
    _holds_only_attributes,
    to_attr,
)
from skvm.ir.operation import OP_REGISTRY, Op, Region, UnregisteredOp, Value, register
from skvm.ir.types import TEXT, list_of

IMPORT_SNIPPETS = [
    "import json\nprint(json.dumps({}))\n",
    "import os.path\nfrom collections import deque, OrderedDict\n",
    "import numpy as np\n",
    "import json, numpy\n",
    "from numpy \\\n    import os\n",
    "x = 1; import yaml\n",
    "from PIL import (Image,\n    ImageDraw)\n",
    "from . import helper\nfrom .sub import thing\n",
    "import helper\n",
    "import json  # comment\nimport requests\n",
    "importlib.import_module('yaml')\n",
    "s = '''\nimport pandas\n'''\n",
    "import json\r\nimport pandas\r\n",
    "def f(:\n    import json\n",
    "def f(:\n    import pandas\n",
    "\timport sys\n\tfrom __future__ import annotations\n",
    "import données\n",
]


@pytest.mark.parametrize("code", IMPORT_SNIPPETS)
def test_python_imports_match_the_parse(code):
    for local in (set(), {"helper"}):
        assert python_imports(code, local) == _parsed_imports(code, local)


def test_op_build_equals_attrs_construction():
    attributes = {"prompt": "p", "caps": (Cap("reason.logic", 1),), "inline": UNIT, "kind": Keyword("k")}
    region = Region((Op.build("ctl.yield", operands=("x",)),))
    for name in ("llm.step", "ctl.if", "ctx.text", "no.such_op"):
        built = Op.build(name, ("task",), (Value("s1", TEXT),), attributes, (region,))
        cls = OP_REGISTRY.get(name, UnregisteredOp)
        direct = cls(name=name, operands=["task"], results=[Value("s1", TEXT)],
                     attributes=attributes, regions=[region])
        assert type(built) is cls
        assert built == direct and hash(built) == hash(direct)
        assert built.attributes == DictAttr.of(attributes)
        assert type(built.operands) is tuple and type(built.regions) is tuple
    assert Op.build("ctl.return").attributes == DictAttr()


def test_register_rejects_an_init_that_build_would_skip():
    class Bad(Op):
        op_name = "test.bad_init"

        def __init__(self, *args, **kwargs):  # pragma: no cover - never called
            super().__init__(*args, **kwargs)

    with pytest.raises(ValueError):
        register(Bad)
    assert "test.bad_init" not in OP_REGISTRY


def test_to_attr_keeps_converting_nested_values():
    assert to_attr(("a", ["b", {"c": 1}])) == ("a", ("b", DictAttr((("c", 1),))))
    flat = ("a", Keyword("b"))
    assert to_attr(flat) == flat
    assert DictAttr.of({}) == DictAttr() and DictAttr.of(None, a=[1]) == DictAttr((("a", (1,)),))


# ---- DictAttr.of without a conversion per value -------------------------------------------

ATTRIBUTE_MAPPINGS = [
    {"title": "", "text": "abc", "level": 2, "inline": UNIT},
    {"prompt": "p", "caps": (Cap("reason.logic", 1),), "evidence": DictAttr((("a", "b"),)), "tools": ()},
    {"argv": ("ls", ValueRef("x")), "resource": SymbolRef("r"), "kind": Keyword("k"), "t": TypeAttr(TEXT)},
    {"nested": (("a",),), "b": 1.5, "c": True},
    {"list": ["a", "b"], "d": {"z": 1, "a": [2]}, "type": list_of(TEXT)},
    {"mixed": ("a", ["b"]), "x": 1},
]


@pytest.mark.parametrize("mapping", ATTRIBUTE_MAPPINGS)
def test_dict_attr_of_equals_converting_every_value(mapping):
    converted = [(k, to_attr(v)) for k, v in mapping.items()]
    assert _holds_only_attributes(mapping.values()) == all(v is mapping[k] for k, v in converted)
    built = DictAttr.of(mapping)
    expected = DictAttr(tuple(sorted(converted, key=lambda kv: kv[0])))
    assert type(built) is DictAttr
    assert built == expected and hash(built) == hash(expected)


# ---- capability rules ---------------------------------------------------------------------

_PIECES = st.sampled_from(
    ["x", " ", ".", "\n", "%", " of", "js", ".mjs", "Tsx", "Node", "Statistics", "ROI", "percent", "must",
     "MUST", "never", "do not", "Don't", "only", "read", "the file", "compute", "average", "if", "If",
     "run", "the script", "import json", "| grep x", "python", "```python", "JSON", "schema", "write",
     "report", "\u017f", "\u0130", "\u212a", "explain", "re", "for each"]
)


def _reference_capabilities(text: str, code: tuple[str, ...] = (), substeps: int = 0) -> list[CapFinding]:
    """step_capabilities without needles, gates or scans: every rule searched in full."""
    import re

    best: dict[str, CapFinding] = {}

    def note(primitive: str, level: int, evidence: str) -> None:
        current = best.get(primitive)
        if current is None or level > current.cap.level:
            best[primitive] = CapFinding(Cap(primitive, level), evidence.strip()[:80])

    code_text = "\n".join(code)
    for rule in CAP_RULES:
        targets = {"text": (text,), "code": (code_text,), "any": (text, code_text)}[rule.where]
        for target in targets:
            m = rule.pattern.search(target) if target else None
            if m:
                note(rule.primitive, rule.level, m.group(0))
                break
    constraints = re.findall(
        r"\b(?:MUST|NEVER|ALWAYS|SHOULD|DO NOT|DON'T|REQUIRED|ONLY)\b|\b(?:must|never|always|do not|don't)\b", text
    )
    if constraints:
        level = 1 if len(constraints) < 3 else 2 if len(constraints) <= 5 else 3
        note("follow.constraint", level, f"{len(constraints)} constraint word(s): {constraints[0]}")
    if substeps:
        level = 1 if substeps <= 4 else 2 if substeps <= 7 else 3
        note("follow.procedure", level, f"{substeps} sub-steps")
    return [best[p] for p in sorted(best)]


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=14), st.lists(st.lists(_PIECES, max_size=6).map("".join), max_size=2))
def test_step_capabilities_match_searching_every_rule(pieces, code):
    text = "".join(pieces)
    assert step_capabilities(text, code) == _reference_capabilities(text, tuple(code))


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=14))
def test_scanned_literals_are_the_ones_that_may_start_a_match(pieces):
    import re

    text = "".join(pieces)
    low = text.lower()
    present = _Text(text).present
    assert present <= {literal for literal in _SCAN_LITERALS if literal in low}
    if not text.isascii():
        assert present == {literal for literal in _SCAN_LITERALS if literal in low}
        return
    # Found wherever a match may start: at a word boundary, or anywhere for
    # the literals of alternatives that do not start with one.
    boundaries = [m.start() for m in re.finditer(r"\b", low)]
    for literal in _SCAN_LITERALS:
        anywhere = literal in _ANYWHERE_LITERALS and literal in low
        if anywhere or any(low.startswith(literal, at) for at in boundaries):
            assert literal in present


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=10))
def test_first_match_is_the_leftmost_match(pieces):
    text = "".join(pieces)
    if any(c in text for c in CASE_FOLD_TRAPS) or len(text.lower()) != len(text):
        return  # those texts take the plain search
    target = _Text(text)
    for rule in CAP_RULES:
        got = _first_match(rule, target)
        expected = rule.pattern.search(text)
        assert (got and got.span()) == (expected and expected.span())


@pytest.mark.parametrize(
    "line",
    ["On macOS, run brew.", "  for Windows users", "If you're using Linux:", "if you are on a Mac do x",
     "**On** linux", "Online docs", "Form the list", "If the result is empty", "- on\tmacos", "ON MACOS",
     "Run it", "", "İf on macos"],
)
def test_platform_opening_holds_for_every_platform_condition(line):
    if any(pattern.match(line) for pattern, _kind, _value in PLATFORM_CONDITIONS):
        assert _PLATFORM_OPENING.match(line)
