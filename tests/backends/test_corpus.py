"""Every target on every corpus skill (the agentskills round trip is in test_roundtrip.py)."""

from __future__ import annotations

import pytest

from backends._support import corpus_skills, importer
from skvm.backends import BACKENDS, emit
from skvm.diagnostics import DiagnosticEngine

SKILLS = corpus_skills()


def _skills():
    if not SKILLS:
        return [pytest.param(None, marks=pytest.mark.skip(reason="../shared/corpus is absent"))]
    return [pytest.param(p, id=p.name) for p in SKILLS]


@pytest.mark.parametrize("skill", _skills())
def test_every_target_emits_corpus_skill(skill):
    """Each target emits each corpus skill without errors."""
    module = importer()(skill, DiagnosticEngine(stream=None))
    for target in BACKENDS:
        bundle = emit(module, target, skill, DiagnosticEngine(stream=None))
        assert "skvm-manifest.json" in bundle
