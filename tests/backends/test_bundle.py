"""Bundle printing and the atomic folder writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from skvm.backends.bundle import Bundle, write_bundle
from skvm.diagnostics import SkvmError


def _bundle() -> Bundle:
    return Bundle({"SKILL.md": "---\nname: x\n---\n", "scripts/a.sh": "#!/bin/sh\necho a\n",
                   "assets/b.bin": b"\x00\x01"}, folder="x")


def test_to_text_sections_in_order():
    """to_text prints === path === sections in insertion order, binaries summarized."""
    text = _bundle().to_text()
    assert text.index("=== SKILL.md ===") < text.index("=== scripts/a.sh ===") < text.index("=== assets/b.bin ===")
    assert "<binary: 2 bytes, sha256 " in text


@pytest.mark.parametrize("bad", ["/abs", "../up", "a/../b", "a//b", "", "a\\b"])
def test_paths_must_be_plain_relative(bad):
    """A bundle never writes outside its folder."""
    with pytest.raises(SkvmError):
        Bundle({bad: "x"})


def test_write_creates_folder_with_executable_scripts(tmp_path):
    """Files land under the destination; shell scripts are executable."""
    dest = write_bundle(_bundle(), tmp_path / "out" / "x")
    assert (dest / "SKILL.md").read_text() == "---\nname: x\n---\n"
    assert (dest / "assets" / "b.bin").read_bytes() == b"\x00\x01"
    assert (dest / "scripts" / "a.sh").stat().st_mode & 0o111
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x"]  # no temp dir left


def test_refuses_non_empty_destination_without_force(tmp_path):
    """A non-empty folder is kept unless --force; an empty one is fine."""
    dest = tmp_path / "x"
    dest.mkdir()
    write_bundle(_bundle(), dest)  # empty: allowed
    (dest / "mine.txt").write_text("keep")
    with pytest.raises(SkvmError, match="not empty"):
        write_bundle(_bundle(), dest)
    assert (dest / "mine.txt").read_text() == "keep"
    write_bundle(_bundle(), dest, force=True)
    assert not (dest / "mine.txt").exists() and (dest / "SKILL.md").exists()


def test_refuses_a_file_destination(tmp_path):
    """A file in the way is a diagnostic."""
    (tmp_path / "x").write_text("file")
    with pytest.raises(SkvmError, match="not a folder"):
        write_bundle(_bundle(), tmp_path / "x", force=True)


def test_failure_leaves_no_half_written_folder(tmp_path, monkeypatch):
    """A write failing midway leaves neither a partial folder nor temp dirs; --force keeps the old one."""
    calls = {"n": 0}
    real = Path.write_bytes

    def flaky(self, data):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", flaky)
    with pytest.raises(SkvmError, match="No space left"):
        write_bundle(_bundle(), tmp_path / "new")
    assert list(tmp_path.iterdir()) == []

    old = tmp_path / "old"
    old.mkdir()
    real(old / "mine.txt", b"keep")
    calls["n"] = 0
    with pytest.raises(SkvmError):
        write_bundle(_bundle(), old, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["old"]
    assert (old / "mine.txt").read_bytes() == b"keep"
