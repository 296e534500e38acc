"""Helpers shared by the back-end and translate tests: fixture modules, corpus, snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from skvm.ir.parser import parse_module

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.skir"))
CORPUS = Path(__file__).parents[2] / ".." / "shared" / "corpus"


class MarkdownSnapshot(SingleFileSnapshotExtension):
    """One ``.md`` file per snapshot holding ``Bundle.to_text()``."""

    _write_mode = WriteMode.TEXT
    file_extension = "md"


def load_fixture(name: str):
    """(module, source root or None) of fixture ``name``."""
    path = FIXTURES / f"{name}.skir"
    module = parse_module(path.read_text(encoding="utf-8"), f"{name}.skir")
    root = FIXTURES / name
    return module, (root if root.is_dir() else None)


def importer():
    """The front end's import_skill, or skip when it does not exist yet."""
    try:
        from skvm.frontend.importer import import_skill
    except ImportError:
        pytest.skip("skvm.frontend.importer is not written yet")
    return import_skill


def corpus_skills() -> list[Path]:
    """The corpus skill folders (empty when the corpus is absent)."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.iterdir() if (p / "SKILL.md").is_file())
