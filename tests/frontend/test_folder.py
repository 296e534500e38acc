"""Tests for reading skill folders (skvm/frontend/folder.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from skvm.diagnostics import SkvmError
from skvm.frontend.folder import classify_path, load_skill_folder

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = Path(__file__).parents[2] / ".." / "shared" / "corpus"
GOOD = "---\nname: s\ndescription: d\n---\nbody\n"


def error_of(path) -> tuple[str, object]:
    """Load ``path``, expecting an SkvmError; return (message, location)."""
    with pytest.raises(SkvmError) as info:
        load_skill_folder(path)
    (diag,) = info.value.diagnostics
    return diag.message, diag.loc


def make_skill(tmp_path: Path, content: bytes | str = GOOD, name: str = "SKILL.md") -> Path:
    root = tmp_path / "s"
    root.mkdir()
    data = content.encode() if isinstance(content, str) else content
    (root / name).write_bytes(data)
    return root


def test_fixture_folder_inventory():
    src = load_skill_folder(FIXTURES / "pdf-notes")
    assert src.display_name == "SKILL.md" and src.folder_name == "pdf-notes"
    assert src.text.startswith("---\nname: pdf-notes")
    assert [(f.rel_path, f.kind) for f in src.files] == [
        ("LICENSE.txt", "asset"),
        ("assets/template.json", "asset"),
        ("references/style.md", "reference"),
        ("scripts/extract.py", "script"),
    ]
    script = src.file("scripts/extract.py")
    data = (FIXTURES / "pdf-notes" / "scripts" / "extract.py").read_bytes()
    assert script.sha256 == hashlib.sha256(data).hexdigest() and script.size == len(data)
    assert script.is_text and script.available and not src.from_manifest


def test_path_to_skill_md_and_lowercase(tmp_path):
    root = make_skill(tmp_path, name="skill.md")
    src = load_skill_folder(root / "skill.md")
    assert src.root == root and src.display_name == "skill.md" and src.files == ()
    assert load_skill_folder(root).skill_md_path == root / "skill.md"


def test_excluded_entries_and_binary_asset(tmp_path):
    root = make_skill(tmp_path)
    for rel in [".git/config", "node_modules/x/index.js", "__pycache__/a.pyc", ".DS_Store"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    (root / "assets").mkdir()
    (root / "assets" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (root / "tool").write_text("#!/bin/sh\necho hi\n")
    src = load_skill_folder(root)
    assert [f.rel_path for f in src.files] == ["assets/logo.png", "tool"]
    assert src.files[0].is_text is False and src.files[1].kind == "script"


@pytest.mark.parametrize(
    "rel, kind",
    [
        ("scripts/run", "script"),
        ("helper.sh", "script"),
        ("lib/x.ts", "script"),
        ("references/api.md", "reference"),
        ("NOTES.txt", "reference"),
        ("LICENSE", "asset"),
        ("LICENSE.txt", "asset"),
        ("requirements.txt", "asset"),
        ("templates/page.md", "asset"),
        ("fonts/a.ttf", "asset"),
        ("data.json", "asset"),
        (".env", "other"),
    ],
)
def test_kind_table(rel, kind):
    assert classify_path(rel) == kind


def test_crlf_bom_normalized(tmp_path):
    root = make_skill(tmp_path, b"\xef\xbb\xbf---\r\nname: s\r\n---\r\nbody\rnext\r\n")
    assert load_skill_folder(root).text == "---\nname: s\n---\nbody\nnext\n"


def test_missing_folder(tmp_path):
    message, loc = error_of(tmp_path / "nope")
    assert message.startswith("no such skill folder or file") and loc is None
    assert str(tmp_path) in message or "nope" in message


def test_folder_without_skill_md(tmp_path):
    (tmp_path / "empty").mkdir()
    message, _ = error_of(tmp_path / "empty")
    assert message.startswith("no SKILL.md in skill folder")


def test_other_file_is_not_a_skill(tmp_path):
    (tmp_path / "README.md").write_text("x")
    message, _ = error_of(tmp_path / "README.md")
    assert "is not a skill folder or a SKILL.md file" in message


def test_binary_skill_md(tmp_path):
    root = make_skill(tmp_path, b"---\nname: a\x00b\n")
    message, loc = error_of(root)
    assert message == "SKILL.md is a binary file (NUL byte)" and (loc.line, loc.col) == (2, 8)


def test_non_utf8_skill_md(tmp_path):
    root = make_skill(tmp_path, "---\ndescription: café ".encode() + b"\xff\xfe\n")
    message, loc = error_of(root)
    assert message == "SKILL.md is not valid UTF-8 (byte 0xff)"
    assert (loc.file, loc.line, loc.col) == ("SKILL.md", 2, 19)


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"  \n\n"])
def test_empty_skill_md(tmp_path, content):
    message, loc = error_of(make_skill(tmp_path, content))
    assert message == "SKILL.md is empty" and loc.line == 1


def test_fifty_megabyte_file_is_refused_unread(tmp_path, monkeypatch):
    import builtins

    root = make_skill(tmp_path)
    with open(root / "SKILL.md", "r+b") as fh:
        fh.truncate(50 * 1024 * 1024)  # sparse: nothing is written
    real_open = builtins.open
    opened = []

    def watching_open(file, *args, **kwargs):
        opened.append(os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", watching_open)
    message, _ = error_of(root)
    # Refused from its size alone: SKILL.md is never opened, let alone read.
    assert not any(name.endswith("SKILL.md") for name in opened)
    assert message.startswith("SKILL.md is too large (52428800 bytes")


def test_symlink_loop_between_links(tmp_path):
    root = make_skill(tmp_path)
    os.symlink(root / "b", root / "a")
    os.symlink(root / "a", root / "b")
    message, _ = error_of(root)
    assert message.startswith("symlink loop at 'a'")


def test_symlink_to_ancestor_is_a_loop(tmp_path):
    root = make_skill(tmp_path)
    (root / "sub").mkdir()
    os.symlink(root, root / "sub" / "up")
    message, _ = error_of(root)
    assert message.startswith("symlink loop at 'sub/up'")


def test_symlink_to_file_and_dangling_link(tmp_path):
    root = make_skill(tmp_path)
    (tmp_path / "outside.py").write_text("print(1)\n")
    os.symlink(tmp_path / "outside.py", root / "linked.py")
    os.symlink(tmp_path / "missing", root / "dangling")
    src = load_skill_folder(root)
    assert [f.rel_path for f in src.files] == ["linked.py"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_files(tmp_path):
    root = make_skill(tmp_path)
    (root / "SKILL.md").chmod(0)
    try:
        message, loc = error_of(root)
        assert message.startswith("cannot read SKILL.md") and loc.file == "SKILL.md"
    finally:
        (root / "SKILL.md").chmod(0o644)
    (root / "secret.txt").write_text("x")
    (root / "secret.txt").chmod(0)
    try:
        message, _ = error_of(root)
        assert message.startswith("cannot read bundled file 'secret.txt'")
    finally:
        (root / "secret.txt").chmod(0o644)


def test_fifo_skill_md_does_not_block(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    os.mkfifo(root / "SKILL.md")
    message, _ = error_of(root)
    assert message == "SKILL.md is not a regular file"


def test_corpus_manifest_layout(tmp_path):
    root = make_skill(tmp_path)
    (root / "files.txt").write_text("scripts/a.py\nLICENSE.txt\n../escape\n\n")
    (root / "SOURCE.txt").write_text("repo: x\npath: skills/real-name/SKILL.md\n")
    src = load_skill_folder(root)
    assert src.from_manifest and src.folder_name == "real-name"
    assert [(f.rel_path, f.kind, f.sha256, f.available) for f in src.files] == [
        ("LICENSE.txt", "asset", None, False),
        ("scripts/a.py", "script", None, False),
    ]


def test_manifest_needs_source_txt(tmp_path):
    root = make_skill(tmp_path)
    (root / "files.txt").write_text("scripts/a.py\n")
    src = load_skill_folder(root)
    assert [f.rel_path for f in src.files] == ["files.txt"] and not src.from_manifest


def test_whole_corpus_loads(tmp_path):
    folders = sorted(p.parent for p in CORPUS.glob("*/SKILL.md")) if CORPUS.is_dir() else []
    if not folders:
        pytest.skip(f"shared corpus not found at {CORPUS}")
    for folder in folders:
        src = load_skill_folder(folder)
        listed = [ln for ln in (folder / "files.txt").read_text().splitlines() if ln.strip()]
        assert sorted(f.rel_path for f in src.files) == sorted(listed)
        assert src.folder_name and "__" not in src.folder_name


def test_copy_of_fixture_is_deterministic(tmp_path):
    copy = tmp_path / "pdf-notes"
    shutil.copytree(FIXTURES / "pdf-notes", copy)
    assert load_skill_folder(copy).files == load_skill_folder(FIXTURES / "pdf-notes").files


def test_unreadable_files_simulated(tmp_path, monkeypatch):
    """Same as test_unreadable_files, but also runs as root (open is stubbed)."""
    import builtins

    from skvm.frontend import folder as folder_module

    root = make_skill(tmp_path)
    (root / "secret.txt").write_text("x")
    denied = {root / "SKILL.md"}

    def fake_open(path, *args, **kwargs):
        if Path(path) in denied:
            raise PermissionError(13, "Permission denied", str(path))
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(folder_module, "open", fake_open, raising=False)
    message, _ = error_of(root)
    assert message == "cannot read SKILL.md: Permission denied"
    denied.clear()
    denied.add(root / "secret.txt")
    message, _ = error_of(root)
    assert message == "cannot read bundled file 'secret.txt': Permission denied"
