"""skvm-translate --from-skill on bad input: a located diagnostic, exit 1, no traceback, no partial output."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from skvm.cli.translate import TranslateDriver

GOOD = "---\nname: s\ndescription: A skill.\n---\n\n# S\n\n1. Do it.\n2. Check it.\n"


def run(args):
    out, err = io.StringIO(), io.StringIO()
    code = TranslateDriver(args, stdin=io.StringIO(""), stdout=out, stderr=err).run()
    return code, out.getvalue(), err.getvalue()


def make(tmp_path: Path, content: bytes | str | None = GOOD, name: str = "s") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    if content is not None:
        data = content.encode() if isinstance(content, str) else content
        (folder / "SKILL.md").write_bytes(data)
    return folder


def test_good_skill_writes_skir(tmp_path):
    out = tmp_path / "s.skir"
    code, _, err = run(["--from-skill", str(make(tmp_path)), "-o", str(out)])
    assert code == 0, err
    assert out.read_text().startswith("skill @s {")


def _broken_yaml(tmp_path):
    return make(tmp_path, "---\nname: s\ndescription: [unclosed\n---\n\nBody.\n")


def _binary(tmp_path):
    return make(tmp_path, b"---\nname: s\n\x00\x01binary")


def _not_utf8(tmp_path):
    return make(tmp_path, b"---\nname: s\ndescription: caf\xe9\n---\n")


def _empty(tmp_path):
    return make(tmp_path, "")


def _no_skill_md(tmp_path):
    return make(tmp_path, None)


def _missing(tmp_path):
    return tmp_path / "nowhere"


def _huge(tmp_path):
    folder = make(tmp_path, None)
    with open(folder / "SKILL.md", "wb") as fh:
        fh.truncate(50 * 1024 * 1024)  # a sparse 50 MB file
    return folder


def _symlink_loop(tmp_path):
    folder = make(tmp_path)
    (folder / "refs").mkdir()
    os.symlink("..", folder / "refs" / "up")
    return folder


CASES = {
    "broken-yaml": (_broken_yaml, "SKILL.md:3:"),
    "binary": (_binary, "SKILL.md:"),
    "not-utf8": (_not_utf8, "SKILL.md:3:"),
    "empty": (_empty, "SKILL.md"),
    "no-skill-md": (_no_skill_md, "SKILL.md"),
    "missing-folder": (_missing, "nowhere"),
    "50MB": (_huge, "SKILL.md"),
    "symlink-loop": (_symlink_loop, "up"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_a_diagnostic_and_keeps_the_output(tmp_path, case):
    maker, where = CASES[case]
    folder = maker(tmp_path)
    out = tmp_path / "keep.skir"
    out.write_text("what the user had\n")
    code, stdout, err = run(["--from-skill", str(folder), "-o", str(out)])
    assert code == 1
    assert "Traceback" not in err and "Traceback" not in stdout
    assert "error:" in err and where in err, err
    assert out.read_text() == "what the user had\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".keep.skir")]
