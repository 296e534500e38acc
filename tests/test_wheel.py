"""The built wheel works outside the source tree: the grammar ships as package data.

Builds a wheel from a copy of the project (so the work tree gets no build/
folder), unpacks it, and runs the venv's Python with only the unpacked wheel
on PYTHONPATH (from a directory outside the repository) to parse a module.
Takes a few seconds; it runs in the default suite because CI must prove it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_SKIP = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "tests",
                               "benchmarks", ".hypothesis", ".pytest_cache", "Output")

PROBE = """
import skvm, sys
from skvm.ir.parser import parse_module
from skvm.ir.printer import print_module
m = parse_module('skill @w { ctx.text "a" "b" }', "w.skir")
sys.stdout.write(skvm.__file__ + "\\n" + print_module(m))
"""


def _setuptools_ok() -> bool:
    probe = "import setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) < 77)"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def test_wheel_parses_outside_the_tree(tmp_path):
    """pip wheel, unpack, import skvm from the wheel and parse a module."""
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=_SKIP)
    wheels = tmp_path / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)]
    if _setuptools_ok():
        # No network: build with the venv's own setuptools.
        command.insert(4, "--no-build-isolation")
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail("pip wheel failed (the dev extra should bring setuptools>=77):\n" + proc.stderr[-3000:])
    (wheel,) = wheels.glob("skvm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "skvm/grammar/skir.lark" in names
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(unpacked)
    env["PYTHONNOUSERSITE"] = "1"
    # PYTHONPATH comes before site-packages, where the editable install's
    # finder sits (appended to sys.meta_path, after the path finder).
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         cwd=elsewhere, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    location, printed = run.stdout.split("\n", 1)
    assert Path(location).resolve() == (unpacked / "skvm" / "__init__.py").resolve()
    assert printed == 'skill @w {\n  ctx.text "a" "b"\n}\n'
