"""Tests for the capability primitive catalog."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from skvm.capabilities import (
    GROUPS,
    LEVELS,
    PRIMITIVES,
    is_level,
    is_primitive,
    level_name,
    level_value,
    suggest,
)

CATALOG_DOC = Path(__file__).parents[1] / ".." / "shared" / "capabilities.md"


def test_catalog_shape():
    assert len(PRIMITIVES) == 26
    counts = {g: sum(p.group == g for p in PRIMITIVES.values()) for g in GROUPS}
    assert counts == {"gen": 9, "reason": 5, "tool": 7, "follow": 5}
    for pid, prim in PRIMITIVES.items():
        assert prim.id == pid and pid.startswith(prim.group + ".")
        assert prim.l1 and prim.l2 and prim.l3
        assert len({prim.l1, prim.l2, prim.l3}) == 3


def test_catalog_matches_design_doc():
    if not CATALOG_DOC.is_file():
        pytest.skip("../shared/capabilities.md is absent: nothing to compare the ids to")
    ids = re.findall(r"^\| ([a-z]+\.[a-z.]+) \|", CATALOG_DOC.read_text(), re.MULTILINE)
    assert ids == list(PRIMITIVES)


def test_levels():
    assert LEVELS == ("L0", "L1", "L2", "L3")
    assert [level_value(n) for n in LEVELS] == [0, 1, 2, 3]
    assert [level_name(v) for v in range(4)] == list(LEVELS)
    assert is_level("L3") and not is_level("L4") and not is_level("l1")
    with pytest.raises(ValueError, match="unknown level 'L4'"):
        level_value("L4")
    with pytest.raises(ValueError):
        level_name(-1)


def test_criterion():
    prim = PRIMITIVES["tool.exec"]
    assert prim.criterion(0) == "absent"
    assert prim.criterion(2) == prim.l2


def test_is_primitive():
    assert is_primitive("tool.exec")
    assert not is_primitive("tool.execute")
    assert not is_primitive("tool")


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("tool.execute", "tool.exec"),
        ("gen.code.pyhton", "gen.code.python"),
        ("reason.arithmatic", "reason.arithmetic"),
        ("follow.procedures", "follow.procedure"),
    ],
)
def test_suggest(typo, expected):
    assert suggest(typo)[0] == expected


def test_suggest_nothing_close():
    assert suggest("zzzzzz") == []
