"""Fast paths of the front end give the same answers as the general ones they skip."""

from __future__ import annotations

import pytest

from skvm.frontend.dependencies import _parsed_imports, python_imports
from skvm.ir.attributes import UNIT, Cap, DictAttr, Keyword, to_attr
from skvm.ir.operation import OP_REGISTRY, Op, Region, UnregisteredOp, Value, register
from skvm.ir.types import TEXT

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
