"""skvm-translate in process: export, install layouts, listing, errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from skvm.cli.translate import TranslateDriver

FIXTURES = Path(__file__).parents[1] / "backends" / "fixtures"
PDF = str(FIXTURES / "pdf_tools.skir")
PDF_ROOT = str(FIXTURES / "pdf_tools")


def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
    """Run the driver; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = TranslateDriver(list(args), io.StringIO(stdin), out, err).run()
    return code, out.getvalue(), err.getvalue()


def frontmatter(path: Path) -> dict:
    return yaml.safe_load(path.read_text().split("---\n", 2)[1])


def test_list_targets():
    """--list-targets names every target with its folders."""
    code, out, _ = run("--list-targets")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert names == ["agentskills", "claude-code", "codex", "gemini-cli", "opencode", "openclaw", "hermes", "vm"]
    assert "~/.claude/skills" in out


def test_print_bundle_to_stdout():
    """--print writes the bundle as === sections."""
    code, out, err = run("--to=codex", PDF, "--print", "--source-root", PDF_ROOT)
    assert code == 0, err
    assert out.startswith("=== SKILL.md ===\n---\nname: pdf-tools\n")
    assert "=== agents/openai.yaml ===" in out and "=== scripts/extract.py ===" in out


def test_stdin_input():
    """'-' reads the module from stdin."""
    code, out, _ = run("--to=gemini-cli", "-", "--print", stdin=Path(PDF).read_text())
    assert code == 0 and "=== SKILL.md ===" in out


def test_writes_folder_and_refuses_non_empty(tmp_path):
    """-o writes the folder; a second run needs --force."""
    dest = tmp_path / "pdf-tools"
    assert run("--to=agentskills", PDF, "-o", str(dest), "--source-root", PDF_ROOT)[0] == 0
    assert (dest / "SKILL.md").exists() and (dest / "scripts" / "extract.py").exists()
    code, _, err = run("--to=agentskills", PDF, "-o", str(dest))
    assert code == 1 and "not empty; use --force" in err
    assert run("--to=agentskills", PDF, "-o", str(dest), "--force")[0] == 0


def test_folder_name_mismatch_warns(tmp_path):
    """agentskills/opencode need the folder to be named like the skill."""
    code, _, err = run("--to=opencode", PDF, "-o", str(tmp_path / "other"))
    assert code == 0 and "differs from the skill name" in err


def test_no_half_written_folder_on_error(tmp_path):
    """A hash mismatch fails before anything is written."""
    src = tmp_path / "src"
    (src / "scripts").mkdir(parents=True)
    (src / "scripts" / "extract.py").write_text("tampered\n")
    (src / "references").mkdir()
    (src / "references" / "forms.md").write_text("x\n")
    dest = tmp_path / "out"
    code, _, err = run("--to=claude-code", PDF, "-o", str(dest), "--source-root", str(src))
    assert code == 1 and "sha256" in err and "pdf_tools.skir:3:3" in err
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.parametrize("args,message", [
    (("--to=nope", PDF, "--print"), "unknown target 'nope'"),
    ((PDF, "--print"), "give --to=<target>"),
    (("--to=codex", PDF), "give -o DIR, --install"),
    (("--to=codex", "missing.skir", "--print"), "no such file: missing.skir"),
    (("--to=hermes", PDF, "--install=project"), "hermes has no project-level skills folder"),
])
def test_usage_and_input_errors(args, message):
    """Bad usage and bad input are one-line diagnostics with exit code 1."""
    code, _, err = run(*args)
    assert code == 1 and message in err and "Traceback" not in err


def test_bad_skir_is_located(tmp_path):
    """A parse error points into the .skir file."""
    bad = tmp_path / "bad.skir"
    bad.write_text("skill @x {\n  bogus\n}\n")
    code, _, err = run("--to=codex", str(bad), "--print")
    assert code == 1 and "bad.skir:2:" in err


def test_verifier_errors_reported(tmp_path):
    """An IR that does not verify is reported, not emitted."""
    bad = tmp_path / "v.skir"
    bad.write_text('skill @v {\n  proc @main() {\n    %a = tool.exec [] : text\n  }\n}\n')
    code, out, err = run("--to=codex", str(bad), "--print")
    assert code == 1 and out == "" and "non-empty argv" in err


# -- install layouts (documented paths and keys) -----------------------------------------

LAYOUTS = [
    ("claude-code", "user", ".claude/skills/pdf-tools"),
    ("claude-code", "project", ".claude/skills/pdf-tools"),
    ("codex", "user", ".agents/skills/pdf-tools"),
    ("codex", "project", ".agents/skills/pdf-tools"),
    ("opencode", "user", ".config/opencode/skills/pdf-tools"),
    ("opencode", "project", ".opencode/skills/pdf-tools"),
    ("gemini-cli", "project", ".gemini/skills/pdf-tools"),
    ("openclaw", "project", "skills/pdf-tools"),
    ("hermes", "user", ".hermes/skills/pdf-tools"),
]


@pytest.mark.parametrize("target,scope,where", LAYOUTS)
def test_install_layout(target, scope, where, tmp_path):
    """--install puts SKILL.md where each harness discovers skills."""
    code, _, err = run(f"--to={target}", PDF, f"--install={scope}", "--root", str(tmp_path),
                       "--source-root", PDF_ROOT)
    assert code == 0, err
    skill = tmp_path / where
    assert (skill / "SKILL.md").is_file()
    assert frontmatter(skill / "SKILL.md")["name"] == skill.name  # name equals the folder


def test_claude_code_layout_keys(tmp_path):
    """Claude Code: spec keys + allowed-tools; scripts next to SKILL.md."""
    run("--to=claude-code", PDF, "--install=project", "--root", str(tmp_path), "--source-root", PDF_ROOT)
    skill = tmp_path / ".claude/skills/pdf-tools"
    fm = frontmatter(skill / "SKILL.md")
    assert fm["allowed-tools"] == "Bash(python:*) Read" and fm["license"] == "Apache-2.0"
    assert (skill / "scripts/extract.py").is_file() and (skill / "references/forms.md").is_file()


def test_codex_layout_keys(tmp_path):
    """Codex: metadata.short-description and agents/openai.yaml in the skill folder."""
    run("--to=codex", PDF, "--install=user", "--root", str(tmp_path))
    skill = tmp_path / ".agents/skills/pdf-tools"
    assert frontmatter(skill / "SKILL.md")["metadata"]["short-description"]
    assert "interface" in yaml.safe_load((skill / "agents/openai.yaml").read_text())


def test_opencode_layout_keys(tmp_path):
    """OpenCode: only the keys it recognises; the name matches its regex and the folder."""
    import re

    run("--to=opencode", str(FIXTURES / "messy_meta.skir"), "--install=project", "--root", str(tmp_path))
    skills = list((tmp_path / ".opencode/skills").iterdir())
    assert len(skills) == 1
    fm = frontmatter(skills[0] / "SKILL.md")
    assert set(fm) <= {"name", "description", "license", "compatibility", "metadata"}
    assert re.fullmatch(r"^[a-z0-9]+(-[a-z0-9]+)*$", fm["name"]) and fm["name"] == skills[0].name
    manifest = json.loads((skills[0] / "skvm-manifest.json").read_text())
    assert manifest["target"] == "opencode"
