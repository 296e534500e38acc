"""docs/skir.md stays true: its generated op reference matches the registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_op_reference_is_up_to_date():
    """tools/gen_op_docs.py --check passes (run the tool after changing a dialect)."""
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_op_docs.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_every_op_is_documented():
    """Each registered op has a section in the reference."""
    from skvm.ir.operation import OP_REGISTRY

    text = (ROOT / "docs" / "skir.md").read_text(encoding="utf-8")
    missing = [name for name in OP_REGISTRY if f"#### `{name}`" not in text]
    assert not missing
