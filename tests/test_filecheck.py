"""Runs the lit + FileCheck suite under tests/filecheck from pytest, so CI sees one runner."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).parent / "filecheck"


def _lit() -> str:
    found = shutil.which("lit", path=os.path.dirname(sys.executable)) or shutil.which("lit")
    if not found:
        pytest.skip("lit is not installed (pip install -e '.[dev]')")
    return found


def test_filecheck_suite():
    """Every FileCheck test passes."""
    tests = [p for p in SUITE.rglob("*") if p.suffix in (".skir", ".test") and "Inputs" not in p.parts]
    assert tests, "the FileCheck suite is empty"
    proc = subprocess.run(
        [_lit(), "-sv", "--no-progress-bar", "-j", "2", str(SUITE)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-20000:] + proc.stderr[-5000:]
