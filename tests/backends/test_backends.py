"""Back ends: snapshots of every target on every fixture, and the target-specific rules."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from backends._support import FIXTURE_NAMES, load_fixture
from skvm.backends import BACKENDS, Bundle, emit, get_backend, list_targets
from skvm.backends.base import normalize_name, trim, yaml_scalar
from skvm.backends.conventions import HARNESSES, PARALLEL_STYLES
from skvm.diagnostics import DiagnosticEngine, Severity, SkvmError

TARGETS = list(BACKENDS)


def frontmatter(bundle: Bundle) -> dict:
    """The parsed frontmatter of the bundle's SKILL.md."""
    text = bundle.text("SKILL.md")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def emit_fixture(name: str, target: str, engine: DiagnosticEngine | None = None) -> Bundle:
    module, root = load_fixture(name)
    return emit(module, target, root, engine)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("fixture", FIXTURE_NAMES)
def test_snapshot(fixture, target, md_snapshot):
    """The emitted bundle of every fixture for every target is stable."""
    assert emit_fixture(fixture, target).to_text() == md_snapshot


def test_registry_and_conventions_agree():
    """Every back end has a conventions row, a summary and a known parallel style."""
    assert set(BACKENDS) == set(HARNESSES)
    assert [n for n, _ in list_targets()] == TARGETS
    for name, cls in BACKENDS.items():
        assert cls.summary and HARNESSES[name].parallel in PARALLEL_STYLES


def test_every_op_kind_is_covered_by_fixtures():
    """The fixtures use every registered op (so the snapshots cover every rendering)."""
    from skvm.ir.operation import OP_REGISTRY

    used = set()
    for name in FIXTURE_NAMES:
        module, _ = load_fixture(name)
        used |= {op.name for op in module.walk()}
    assert set(OP_REGISTRY) - used == set()


def test_emit_is_deterministic():
    """Two emissions give equal bundles."""
    for target in TARGETS:
        assert emit_fixture("batch_reports", target) == emit_fixture("batch_reports", target)


# -- agentskills ------------------------------------------------------------------


def _validator() -> str:
    exe = shutil.which("agentskills", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("skills-ref (agentskills CLI) is not installed")
    return exe


@pytest.mark.parametrize("fixture", FIXTURE_NAMES)
def test_agentskills_passes_official_validator(fixture, tmp_path):
    """skills-ref accepts the emitted folder, including from spec-breaking meta."""
    bundle = emit_fixture(fixture, "agentskills")
    from skvm.backends import write_bundle

    dest = write_bundle(bundle, tmp_path / bundle.folder)
    proc = subprocess.run([_validator(), "validate", str(dest)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_agentskills_fixes_spec_violations():
    """Title-Case name, extra keys and a long description with <> become spec-valid."""
    engine = DiagnosticEngine(stream=None)
    bundle = emit_fixture("messy_meta", "agentskills", engine)
    fm = frontmatter(bundle)
    assert list(fm) == ["name", "description", "metadata"]
    assert fm["name"] == bundle.folder == "tidy-notes-helper-v2"
    assert len(fm["description"]) <= 1024 and "<" not in fm["description"]
    assert fm["metadata"]["author"] == "Jane Doe"
    assert fm["metadata"]["tags"] == '["notes","markdown"]'
    assert fm["metadata"]["version"] == "2" and fm["metadata"]["owner"] == "docs-team"
    assert all(isinstance(v, str) for v in fm["metadata"].values())
    messages = " | ".join(d.message for d in engine.of(Severity.WARNING))
    assert "normalized" in messages and "trimmed" in messages and "angle brackets" in messages
    manifest = json.loads(bundle.text("skvm-manifest.json"))
    assert "tags" in manifest["moved_to_metadata"]


def test_agentskills_keeps_commands_in_the_body():
    """agentskills never lowers commands to run scripts (the body must import back)."""
    bundle = emit_fixture("pdf_tools", "agentskills")
    assert not any(p.startswith("scripts/run-") for p in bundle)
    assert "pdfinfo <pdf>" in bundle.text("SKILL.md")


@pytest.mark.parametrize("raw,expected", [
    ("Tidy Notes_Helper--v2!", "tidy-notes-helper-v2"),
    ("FFmpeg Format Conversion", "ffmpeg-format-conversion"),
    ("data_cleaning", "data-cleaning"),
    ("Café-Ünïcode", "cafe-unicode"),
    ("---", "skill"),
    ("a" * 70 + "-b", "a" * 64),
])
def test_normalize_name(raw, expected):
    """Names become lowercase [a-z0-9-] without edge or double hyphens, ≤ 64."""
    assert normalize_name(raw) == expected


def test_trim_and_yaml_scalar():
    """Trimming respects the budget; YAML scalars quote what YAML would misread."""
    assert len(trim("word " * 400, 1024)) <= 1024
    assert trim("short", 10) == "short"
    for value in ("yes", "a: b", "#x", "1.5", "x ", "[a]", "ok"):
        assert yaml.safe_load(f"k: {yaml_scalar(value)}")["k"] == value


# -- bundled files ------------------------------------------------------------------


def test_resources_copied_with_hash_and_missing_listed():
    """Present files are copied; a file the source lacks is a warning in the manifest."""
    engine = DiagnosticEngine(stream=None)
    bundle = emit_fixture("pdf_tools", "claude-code", engine)
    assert "scripts/extract.py" in bundle and "references/forms.md" in bundle
    assert "assets/logo.png" not in bundle
    manifest = json.loads(bundle.text("skvm-manifest.json"))
    status = {r["path"]: r["status"] for r in manifest["resources"]}
    assert status == {"scripts/extract.py": "copied", "references/forms.md": "copied", "assets/logo.png": "missing"}
    assert any("assets/logo.png" in d.message for d in engine.of(Severity.WARNING))


def test_resource_hash_mismatch_is_a_diagnostic(tmp_path):
    """A bundled file that changed since import is an error, not a silent copy."""
    module, root = load_fixture("pdf_tools")
    copy = tmp_path / "src"
    shutil.copytree(root, copy)
    (copy / "scripts" / "extract.py").write_text("print('tampered')\n")
    engine = DiagnosticEngine(stream=None)
    with pytest.raises(SkvmError) as info:
        get_backend("agentskills", copy, engine).emit(module)
    assert "sha256" in str(info.value)
    assert info.value.diagnostics[0].loc is not None


def test_binary_resource_summarized(tmp_path):
    """Binary files stay bytes and print as size + sha256."""
    from skvm.ir.parser import parse_module

    data = bytes(range(256))
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "b.bin").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    module = parse_module(
        'skill @b {\n  meta {description = "d", name = "b"}\n'
        f'  resource @bin = "assets/b.bin" {{kind = asset, sha256 = "{digest}"}}\n}}\n'
    )
    bundle = emit(module, "agentskills", tmp_path)
    assert bundle["assets/b.bin"] == data
    assert f"<binary: 256 bytes, sha256 {digest}>" in bundle.to_text()


# -- what never leaks, what is always lowered ------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_compiler_bookkeeping_never_in_prompts(target):
    """legalized / evidence / caps attributes stay out of every emitted text file."""
    bundle = emit_fixture("pdf_tools", target)
    for path, data in bundle.items():
        if isinstance(data, bytes) or path.endswith(".skir"):
            continue
        for leak in ("degrade: split into rows first", "reason.analysis", "legalized", "evidence"):
            assert leak not in data, (path, leak)


@pytest.mark.parametrize("target", TARGETS)
def test_generated_scripts_are_valid_bash(target):
    """Every generated shell script parses (bash -n)."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    for fixture in FIXTURE_NAMES:
        for path, data in emit_fixture(fixture, target).items():
            if path.endswith(".sh"):
                proc = subprocess.run([bash, "-n"], input=data, capture_output=True, text=True)
                assert proc.returncode == 0, (fixture, path, proc.stderr)


def test_setup_script_checks_before_installing_and_never_updates_apt_unasked():
    """Each install sits behind a check; apt-get update only under SKVM_APT_UPDATE=1."""
    for fixture in ("pdf_tools", "batch_reports"):
        script = emit_fixture(fixture, "codex").text("scripts/setup-env.sh")
        for line in script.splitlines():
            if "pip install" in line or "npm install" in line:
                assert line.startswith("  "), line  # inside an `if ! check; then`
        updates = [l for l in script.splitlines() if "apt-get update" in l and not l.startswith("#")]
        assert updates and all("SKVM_APT_UPDATE" in l for l in updates)
    script = emit_fixture("pdf_tools", "codex").text("scripts/setup-env.sh")
    assert "python3 -m pip show pypdf" in script and "command -v pdftotext" in script


def test_setup_script_is_idempotent_when_everything_is_present(tmp_path):
    """With every check passing, the script installs nothing and exits 0."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    stub = tmp_path / "bin"
    stub.mkdir()
    log = tmp_path / "calls"
    for tool in ("python3", "npm", "jq", "pdftotext", "dpkg", "brew", "apt-get", "sudo"):
        (stub / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\nexit 0\n')
        (stub / tool).chmod(0o755)
    script = emit_fixture("batch_reports", "codex").text("scripts/setup-env.sh")
    proc = subprocess.run([bash, "-c", script], capture_output=True, text=True,
                          env={"PATH": f"{stub}:/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text() if log.exists() else ""
    assert "install" not in calls and "apt-get" not in calls


def test_command_runs_lowered_to_scripts():
    """Harness targets run model-free command sequences from a script, with params."""
    bundle = emit_fixture("pdf_tools", "claude-code")
    script = bundle.text("scripts/run-1.sh")
    assert 'pdfinfo "$1"' in script and '"$SKILL_DIR"/scripts/extract.py "$1" --all' in script
    assert "Run `scripts/run-1.sh <pdf>` with the Bash tool" in bundle.text("SKILL.md")


def test_jit_solid_becomes_a_script_with_fallback():
    """jit.solid is a script; its original step is the fallback in the prose."""
    bundle = emit_fixture("batch_reports", "opencode")
    assert 'python3 "$SKILL_DIR"/scripts/merge.py "$1"' in bundle.text("scripts/solid-1.sh")
    body = bundle.text("SKILL.md")
    assert "Run `scripts/solid-1.sh <dir>` with the bash tool." in body
    assert "If it fails, do this instead:" in body and "Merge the reports" in body


def test_dependency_fragments():
    """pip and npm requirements produce requirements.txt and package.json fragments."""
    pdf = emit_fixture("pdf_tools", "hermes")
    assert pdf.text("scripts/requirements.txt") == "pypdf>=4\n"
    batch = emit_fixture("batch_reports", "hermes")
    assert json.loads(batch.text("scripts/package.json"))["dependencies"] == {"csv-parse": "5"}


# -- harness specifics ------------------------------------------------------------------


@pytest.mark.parametrize("target,phrase", [
    ("claude-code", "dispatch one sub-agent with the Task tool"),
    ("codex", "make the tool calls for up to 3 items together in one turn"),
    ("opencode", "make their tool calls together in one turn"),
    ("gemini-cli", "each item is independent of the others"),
    ("openclaw", "Part 2 (independent of the other parts):"),
    ("hermes", "Do these 2 independent parts, in any order:"),
])
def test_parallel_regions_rendered_the_harness_way(target, phrase):
    """ctl.map / ctl.parallel follow each harness's parallel style."""
    assert phrase in emit_fixture("batch_reports", target).text("SKILL.md")


@pytest.mark.parametrize("target,tool", [
    ("claude-code", "with the Bash tool"), ("codex", "with the shell tool"),
    ("gemini-cli", "with the run_shell_command tool"), ("opencode", "with the bash tool"),
    ("openclaw", "with the exec tool"), ("hermes", "with the terminal tool"),
])
def test_tool_names_in_prose(target, tool):
    """Commands name each harness's shell tool."""
    assert tool in emit_fixture("pdf_tools", target).text("SKILL.md")


def test_openclaw_single_line_frontmatter_and_gating():
    """OpenClaw: one line per key, metadata JSON with requires.{bins,env}, {baseDir} paths."""
    bundle = emit_fixture("pdf_tools", "openclaw")
    head = bundle.text("SKILL.md").split("---\n", 2)[1]
    assert all(re.match(r"^[a-z-]+: ", line) for line in head.splitlines())
    meta = json.loads(frontmatter(bundle)["metadata"]) if isinstance(frontmatter(bundle)["metadata"], str) \
        else frontmatter(bundle)["metadata"]
    assert meta["openclaw"]["requires"] == {"bins": ["pdftotext"]}  # the optional env var does not gate
    assert "`{baseDir}/references/forms.md`" in bundle.text("SKILL.md")
    batch = frontmatter(emit_fixture("batch_reports", "openclaw"))["metadata"]
    assert batch["openclaw"]["requires"] == {"bins": ["jq"]}


def test_codex_short_description_and_sidecar():
    """Codex: metadata.short-description and agents/openai.yaml."""
    bundle = emit_fixture("pdf_tools", "codex")
    fm = frontmatter(bundle)
    assert set(fm) == {"name", "description", "metadata"}
    assert fm["metadata"]["short-description"] == "Extract text and tables from PDF files"
    sidecar = yaml.safe_load(bundle.text("agents/openai.yaml"))
    assert sidecar["interface"]["short_description"] == fm["metadata"]["short-description"]
    assert sidecar["interface"]["default_prompt"] == "Use $pdf-tools."


def test_claude_code_keeps_its_extensions_top_level():
    """Claude Code reads argument-hint and disable-model-invocation at top level."""
    fm = frontmatter(emit_fixture("messy_meta", "claude-code"))
    assert fm["argument-hint"] == "[notes-file]" and fm["disable-model-invocation"] is True
    assert "argument-hint" not in fm.get("metadata", {})


def test_hermes_keeps_tags():
    """Hermes reads tags and related_skills."""
    fm = frontmatter(emit_fixture("messy_meta", "hermes"))
    assert fm["tags"] == ["notes", "markdown"] and fm["related_skills"] == ["notes", "outline"]


def test_gemini_keeps_only_name_and_description():
    """Gemini CLI reads name and description; dropped keys are in the manifest."""
    bundle = emit_fixture("pdf_tools", "gemini-cli")
    assert set(frontmatter(bundle)) == {"name", "description"}
    dropped = json.loads(bundle.text("skvm-manifest.json"))["dropped_keys"]
    assert dropped == ["allowed-tools", "license"]


def test_codex_listing_budget_trims_with_warning():
    """Codex keeps descriptions inside its share of the catalog budget, with a warning."""
    engine = DiagnosticEngine(stream=None)
    fm = frontmatter(emit_fixture("messy_meta", "codex", engine))
    assert len(fm["description"]) <= HARNESSES["codex"].description_budget
    assert any("listing budget" in d.message for d in engine.of(Severity.WARNING))


def test_vm_prompts_per_llm_op():
    """vm: one prompt file per llm op, the module, context and scripts."""
    bundle = emit_fixture("batch_reports", "vm")
    prompts = sorted(p for p in bundle if p.startswith("prompts/main/"))
    assert prompts == ["prompts/main/1-gen.md", "prompts/main/2-step.md",
                       "prompts/main/3-step.md", "prompts/main/4-step.md"]
    assert "Write every report under out/." in bundle.text("prompts/main/2-step.md")
    assert "skill.skir" in bundle and "scripts/solid-1.sh" in bundle
    from skvm.ir.parser import parse_module

    module, _ = load_fixture("batch_reports")
    assert parse_module(bundle.text("skill.skir")) == module
    schema = emit_fixture("pdf_tools", "vm").text("prompts/main/2-step.md")
    assert '"type": "array"' in schema
