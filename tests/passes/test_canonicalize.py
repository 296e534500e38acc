"""Tests of the canonicalize transform's helpers."""

from __future__ import annotations

import random

from skvm.ir.attributes import Cap
from skvm.passes.transforms.canonicalize import _is_canonical, canonical_caps


def test_canonical_check_agrees_with_canonical_caps():
    """A list the quick check accepts is exactly what canonical_caps would build."""
    rng = random.Random(7)
    primitives = ["gen.text.prose", "reason.logic", "tool.exec", "follow.format"]
    accepted = 0
    for _ in range(5000):
        caps = tuple(
            "junk" if rng.random() < 0.05 else Cap(rng.choice(primitives), rng.randint(-1, 3))
            for _ in range(rng.randint(1, 4))
        )
        if _is_canonical(caps):
            accepted += 1
            assert canonical_caps(caps) == caps
        assert _is_canonical(canonical_caps(caps))
    assert accepted > 100
