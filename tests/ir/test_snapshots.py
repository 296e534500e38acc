"""Snapshots of printed IR as ``.skir`` files (syrupy, text extension; never object reprs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from skvm.ir.parser import parse_module
from skvm.ir.printer import print_module
from skvm.passes.manager import PassManager
from skvm.passes.pipeline import parse_pipeline

ALL_OPS = (Path(__file__).parent / "Inputs" / "all_ops.skir").read_text(encoding="utf-8")


class SkirSnapshotExtension(SingleFileSnapshotExtension):
    """One UTF-8 ``.skir`` file per snapshot."""

    file_extension = "skir"
    _write_mode = WriteMode.TEXT


@pytest.fixture
def snapshot_skir(snapshot):
    """The snapshot fixture writing ``.skir`` text files."""
    return snapshot.use_extension(SkirSnapshotExtension)


def test_all_ops_custom(snapshot_skir):
    """The custom form of every op."""
    assert print_module(parse_module(ALL_OPS)) == snapshot_skir


def test_all_ops_generic(snapshot_skir):
    """The generic form of every op."""
    assert print_module(parse_module(ALL_OPS), generic=True) == snapshot_skir


def test_all_ops_canonicalized(snapshot_skir):
    """The sample after the canonicalize pass."""
    module = PassManager(parse_pipeline("canonicalize")).run(parse_module(ALL_OPS))
    assert print_module(module) == snapshot_skir
