"""Lowering of skill folders to SkIR: one test per rule, snapshots, corpus, fuzzing."""

from __future__ import annotations

import io
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skvm.cli.opt import OptDriver
from skvm.diagnostics import DiagnosticEngine, Severity, SkvmError
from skvm.frontend.capability_rules import CAP_RULES, _first_match, _Text
from skvm.frontend.importer import import_skill
from skvm.ir.attributes import Keyword, SymbolRef, to_python
from skvm.ir.printer import print_module

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures" / "lowering"
CORPUS = HERE.parents[1] / ".." / "shared" / "corpus"
CORPUS_SKILLS = sorted(p for p in CORPUS.glob("*/") if (p / "SKILL.md").exists()) if CORPUS.is_dir() else []


def skill(tmp_path: Path, body: str, front: str = "name: t\ndescription: A test skill.", files=None) -> Path:
    """Write a skill folder named t and return it."""
    root = tmp_path / "t"
    root.mkdir(exist_ok=True)
    (root / "SKILL.md").write_text(f"---\n{front}\n---\n\n" + textwrap.dedent(body), encoding="utf-8")
    for rel, text in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def ops(module, name=None):
    return [op for op in module.walk() if name is None or op.name == name]


def lower(tmp_path, body, **kw):
    engine = DiagnosticEngine(stream=None)
    module = import_skill(skill(tmp_path, body, **kw), engine)
    return module, engine


# ---- one test per lowering rule ---------------------------------------------------


def test_guidance_only_skill_gets_a_single_step_main(tmp_path):
    module, _ = lower(tmp_path, "# Guide\n\nWrite clearly.\n")
    (main,) = module.procs()
    assert main.sym_name == "main"
    assert [op.name for op in main.regions[0].ops] == ["llm.step", "ctl.return"]
    assert main.regions[0].args[0].name == "task"


def test_sections_become_ctx_text_with_titles_and_levels(tmp_path):
    module, _ = lower(tmp_path, "# Top\n\nIntro.\n\n## Sub\n\nMore text.\n")
    texts = ops(module, "ctx.text")
    assert [(t.attr("title"), t.attr("text"), t.attr("level")) for t in texts] == [
        ("Top", "Intro.", 1),
        ("Sub", "More text.", 2),
    ]


@pytest.mark.parametrize(
    "sentence, severity",
    [
        ("You MUST keep backups.", "must"),
        ("ALWAYS quote paths.", "must"),
        ("NEVER delete the input.", "never"),
        ("Do not edit generated files.", "never"),
        ("You should avoid global state.", "should"),
    ],
)
def test_rule_sentences_become_ctx_rule(tmp_path, sentence, severity):
    module, _ = lower(tmp_path, f"# R\n\nSome context. {sentence}\n")
    rules = ops(module, "ctx.rule")
    assert [(r.attr("severity"), r.attr("text")) for r in rules] == [(Keyword(severity), sentence)]
    assert rules[0].has_attr("inline")


def test_code_outside_procedures_is_an_example(tmp_path):
    module, _ = lower(tmp_path, "# E\n\n```python\nprint(1)\n```\n")
    (example,) = ops(module, "ctx.example")
    assert example.attr("code") == "print(1)" and example.attr("lang") == "python"


def test_html_comment_is_kept_as_marked_context(tmp_path):
    module, _ = lower(tmp_path, "# C\n\n<!-- hidden note -->\n")
    (comment,) = [t for t in ops(module, "ctx.text") if t.has_attr("html_comment")]
    assert comment.attr("text") == "hidden note"


def test_numbered_list_becomes_main_with_llm_steps(tmp_path):
    module, _ = lower(tmp_path, "# Workflow\n\n1. Read the input.\n2. Summarise it.\n3. Report.\n")
    (main,) = module.procs()
    steps = [op for op in main.regions[0].ops if op.name == "llm.step"]
    assert [s.attr("prompt") for s in steps] == ["Read the input.", "Summarise it.", "Report."]
    # Steps are chained through their results.
    assert steps[1].operands == ("task", steps[0].results[0].name)
    # The procedure is anchored in the context stream.
    anchors = [r for r in ops(module, "ctx.ref") if r.attr("resource") == SymbolRef("main")]
    assert len(anchors) == 1


def test_step_headings_become_a_procedure(tmp_path):
    module, _ = lower(tmp_path, "# Guide\n\n## Step 1: Plan\n\nMake a plan.\n\n## Step 2: Do\n\nDo it.\n")
    (main,) = module.procs()
    prompts = [op.attr("prompt") for op in main.regions[0].ops if op.name == "llm.step"]
    assert prompts == ["Step 1: Plan\n\nMake a plan.", "Step 2: Do\n\nDo it."]
    assert not [t for t in ops(module, "ctx.text") if "Make a plan" in t.attr("text")]


def test_bullets_under_workflow_heading_are_steps(tmp_path):
    module, _ = lower(tmp_path, "## Workflow\n\n- Fetch the data.\n- Clean it.\n")
    assert len([o for o in ops(module, "llm.step")]) == 2


def test_bullets_under_other_headings_are_prose(tmp_path):
    module, _ = lower(tmp_path, "## Notes\n\n- Fetch the data.\n- Clean it.\n")
    assert [t.attr("text") for t in ops(module, "ctx.text")] == ["- Fetch the data.\n- Clean it."]


def test_command_step_becomes_tool_exec(tmp_path):
    module, _ = lower(tmp_path, "# W\n\n1. Install:\n\n   ```bash\n   pip install rich\n   ls -la | sort\n   ```\n2. Done.\n")
    execs = ops(module, "tool.exec")
    assert [e.attr("argv") for e in execs] == [("pip", "install", "rich"), ("ls -la | sort",)]
    assert execs[1].has_attr("shell") and not execs[0].has_attr("shell")
    assert "Install:" in execs[0].attr("origin")


def test_command_with_placeholders_stays_a_model_step(tmp_path):
    module, _ = lower(tmp_path, "# W\n\n1. Run `gh pr view <number>` for the PR.\n2. Done.\n")
    (step, _done) = ops(module, "llm.step")
    assert step.attr("commands") == ("gh pr view <number>",)
    assert not ops(module, "tool.exec")


def test_bundled_script_invocation_becomes_tool_script(tmp_path):
    module, _ = lower(
        tmp_path,
        "# W\n\n1. Run `python scripts/go.py --all` now.\n2. Report.\n",
        files={"scripts/go.py": "print('hi')\n"},
    )
    (script,) = ops(module, "tool.script")
    assert script.attr("script") == SymbolRef("go_py") and script.attr("args") == ("--all",)


def test_for_each_step_becomes_loop(tmp_path):
    module, _ = lower(tmp_path, "# W\n\n1. For each file in the folder, count its lines.\n2. Report.\n")
    (loop,) = ops(module, "ctl.for_each")
    listing = next(iter(ops(module, "llm.gen")))
    assert loop.operands == (listing.results[0].name,)
    assert loop.regions[0].args[0].name.startswith("item")


def test_if_otherwise_steps_become_ctl_if_with_judge(tmp_path):
    module, _ = lower(tmp_path, "# W\n\n1. If the file is empty, say so.\n2. Otherwise, summarise it.\n")
    (judge,) = ops(module, "llm.judge")
    assert judge.attr("question") == "the file is empty"
    (branch,) = ops(module, "ctl.if")
    then_prompt = branch.regions[0].ops[0].attr("prompt")
    else_prompt = branch.regions[1].ops[0].attr("prompt")
    assert then_prompt.startswith("If the file") and else_prompt.startswith("Otherwise")


@pytest.mark.parametrize(
    "text, kind, value, negate",
    [
        ("On macOS, use `pbcopy`.", "os", "macos", False),
        ("On Windows, use PowerShell.", "os", "windows", False),
        ("If ffmpeg is not installed, install it first.", "bin", "ffmpeg", True),
        ("If `jq` is available, pretty-print the output.", "bin", "jq", False),
    ],
)
def test_platform_and_tool_conditions_become_env_if(tmp_path, text, kind, value, negate):
    module, _ = lower(tmp_path, f"# W\n\n1. {text}\n2. Report.\n")
    (branch,) = ops(module, "env.if")
    assert branch.attr("kind") == Keyword(kind) and branch.attr("value") == value
    assert branch.has_attr("negate") is negate


def test_platform_heading_wraps_context_in_env_if(tmp_path):
    module, _ = lower(tmp_path, "# Setup\n\nGeneral.\n\n## macOS\n\nUse brew.\n\n## Other\n\nDone.\n")
    (branch,) = [op for op in module.ops if op.name == "env.if"]
    assert [o.attr("title") for o in branch.regions[0].ops] == ["macOS"]


def test_several_procedures_get_a_dispatching_main(tmp_path):
    module, _ = lower(tmp_path, "## Build\n\n1. Build.\n2. Test.\n\n## Deploy\n\n1. Push.\n2. Verify.\n")
    names = [p.sym_name for p in module.procs()]
    assert names == ["main", "build", "deploy"]
    main = module.procs()[0]
    assert [op.name for op in main.regions[0].ops].count("ctl.if") == 2
    assert len(ops(module, "ctl.call")) == 2


def test_bundled_files_become_resources_with_kinds_and_hashes(tmp_path):
    module, _ = lower(
        tmp_path,
        "# R\n\nSee [forms](references/forms.md) and run `scripts/a.sh`.\n",
        files={"references/forms.md": "x\n", "scripts/a.sh": "echo a\n", "assets/logo.svg": "<svg/>\n"},
    )
    resources = {r.attr("path"): r for r in module.resources()}
    assert {p: r.attr("kind").name for p, r in resources.items()} == {
        "assets/logo.svg": "asset",
        "references/forms.md": "reference",
        "scripts/a.sh": "script",
    }
    assert len(resources["scripts/a.sh"].attr("sha256")) == 64
    refs = {r.attr("resource").name for r in ops(module, "ctx.ref")}
    assert refs == {"forms_md", "a_sh"}


def test_mention_of_a_missing_file_is_a_warning(tmp_path):
    _module, engine = lower(tmp_path, "# R\n\nRead `references/nope.md` first.\n")
    (warning,) = engine.of(Severity.WARNING)
    assert "references/nope.md" in warning.message and (warning.loc.line, warning.loc.col) == (8, 7)


@pytest.mark.parametrize(
    "command, manager, package, version",
    [
        ("pip install 'requests>=2'", "pip", "requests", ">=2"),
        ("uv pip install httpx", "pip", "httpx", None),
        ("uv add polars", "pip", "polars", None),
        ("npm install -g typescript@5", "npm", "typescript", "5"),
        ("npx prettier --check .", "npm", "prettier", None),
        ("pnpm add zod", "npm", "zod", None),
        ("yarn add lodash", "npm", "lodash", None),
        ("apt-get install -y ffmpeg", "apt", "ffmpeg", None),
        ("brew install jq", "brew", "jq", None),
        ("cargo install ripgrep", "cargo", "ripgrep", None),
        ("go install golang.org/x/tools/gopls@latest", "go", "golang.org/x/tools/gopls", "latest"),
        ("ffmpeg -i a.mp4 b.gif", "bin", "ffmpeg", None),
    ],
)
def test_install_commands_and_binaries_become_env_require(tmp_path, command, manager, package, version):
    module, _ = lower(tmp_path, f"# D\n\n```bash\n{command}\n```\n")
    found = {(r.attr("manager").name, r.attr("package")): r for r in ops(module, "env.require")}
    assert (manager, package) in found
    assert found[(manager, package)].attr("version") == version


def test_python_imports_map_to_distributions_and_skip_stdlib(tmp_path):
    code = "import os, json\nimport yaml\nfrom PIL import Image\nimport cv2\nfrom bs4 import X\nfrom sklearn import svm\nimport helper\n"
    module, _ = lower(
        tmp_path, f"# D\n\n```python\n{code}```\n", files={"scripts/helper.py": "import numpy\n"}
    )
    packages = {r.attr("package") for r in ops(module, "env.require") if r.attr("manager").name == "pip"}
    assert packages == {"PyYAML", "Pillow", "opencv-python", "beautifulsoup4", "scikit-learn", "numpy"}


def test_javascript_imports_become_npm_requirements(tmp_path):
    code = 'const a = require("express");\nimport b from "node:fs";\nimport c from "./c.js";\nimport { d } from "@scope/pkg/sub";\n'
    module, _ = lower(tmp_path, f"# D\n\n```js\n{code}```\n")
    packages = {r.attr("package") for r in ops(module, "env.require") if r.attr("manager").name == "npm"}
    assert packages == {"express", "@scope/pkg"}


def test_compatibility_field_becomes_requirements(tmp_path):
    module, _ = lower(
        tmp_path, "# C\n\nText.\n",
        front="name: t\ndescription: d\ncompatibility: Requires git, docker and jq. Python 3.11+",
    )
    found = {(r.attr("manager").name, r.attr("package"), r.attr("version")) for r in ops(module, "env.require")}
    assert found == {("bin", "git", None), ("bin", "docker", None), ("bin", "jq", None), ("python", "python", ">=3.11")}


@pytest.mark.parametrize(
    "text, cap",
    [
        ("Compute the average of the column.", "reason.arithmetic:L2"),
        ("Write a Python script with pandas.", "gen.code.python:L3"),
        ("Fetch https://example.com and parse the JSON response.", "tool.web:L2"),
        ("Click the submit button in the browser.", "tool.browser:L2"),
        ("Find the root cause across files.", "reason.analysis:L3"),
        ("Return valid JSON matching the schema.", "gen.text.structured:L2"),
    ],
)
def test_step_capabilities_come_from_the_rule_table_with_evidence(tmp_path, text, cap):
    module, _ = lower(tmp_path, f"# W\n\n1. {text}\n2. Report.\n")
    step = ops(module, "llm.step")[0]
    caps = [str(c) for c in step.attr("caps")]
    assert cap in caps
    assert cap in step.attr("evidence")


_GATED_RULES = [rule for rule in CAP_RULES if rule.gate is not None]


def test_rules_without_needles_get_gates():
    # The two prose rules without needles would otherwise search every step.
    assert {(r.primitive, r.level) for r in _GATED_RULES} >= {("gen.code.javascript", 1), ("reason.arithmetic", 3)}
    assert "%" in next(r for r in _GATED_RULES if r.primitive == "reason.arithmetic").gate


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["x", " ", ".", "%", " of", "js", "MJS", "Tsx", "ts", "Node", "Statistics",
                                 "ROI", "RO", "percent", "\u017f", "\u0131", "\u0130", "\u212a", "java", "script", "cript", "tatistic"]),
                max_size=12))
def test_a_gate_never_skips_a_match(pieces):
    text = "".join(pieces)
    for rule in _GATED_RULES:
        expected = rule.pattern.search(text)
        got = _first_match(rule, _Text(text))
        assert (got and got.span()) == (expected and expected.span())


def test_frontmatter_lands_in_meta_with_extensions(tmp_path):
    module, engine = lower(
        tmp_path, "# X\n\nY.\n",
        front="name: My Skill\ndescription: d\nallowed-tools: Read Bash(git:*)\nversion: 2\nmetadata:\n  owner: me",
    )
    meta = module.meta
    assert meta.attr("name") == "My Skill"
    assert meta.attr("allowed_tools") == ("Read", "Bash(git:*)")
    assert to_python(meta.attr("extensions")) == {"version": "2"}
    assert to_python(meta.attr("metadata")) == {"owner": "me"}
    assert any("version" in d.message for d in engine.of(Severity.WARNING))


# ---- snapshots of the fixtures ------------------------------------------------------

FIXTURE_DIRS = sorted(p for p in FIXTURES.iterdir() if p.is_dir()) + [
    HERE / "fixtures" / "pdf-notes",
    HERE / "fixtures" / "messy_skill",
]


@pytest.mark.parametrize("folder", FIXTURE_DIRS, ids=lambda p: p.name)
def test_fixture_snapshot(folder, skir_snapshot):
    """The imported IR of each fixture skill, as printed SkIR."""
    assert print_module(import_skill(folder)) == skir_snapshot


# ---- the corpus ------------------------------------------------------------------------

def _require_corpus():
    if not CORPUS_SKILLS:
        pytest.skip(f"the shared corpus is absent ({CORPUS.resolve()}); nothing to check")


@pytest.mark.parametrize("folder", CORPUS_SKILLS or [None], ids=lambda p: p.name if p else "absent")
def test_corpus_imports_verifies_and_round_trips(folder, tmp_path):
    if folder is None:
        _require_corpus()
    out = io.StringIO()
    err = io.StringIO()
    assert OptDriver([str(folder)], stdout=out, stderr=err).run() == 0, err.getvalue()
    assert "Traceback" not in err.getvalue()
    imported = out.getvalue()
    again = io.StringIO()
    assert OptDriver(["-"], stdin=io.StringIO(imported), stdout=again, stderr=err).run() == 0
    assert again.getvalue() == imported


_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
_NUMBERED = re.compile(r"^[ \t]*\d{1,3}[.)][ \t]+(\S.*)$", re.MULTILINE)
_RULE_WORD = re.compile(r"\b(MUST|NEVER|ALWAYS|[Dd]o not|DO NOT)\b")


def _strings(module) -> str:
    parts = []
    for op in module.walk():
        for _, value in op.attributes.items:
            parts.append(str(to_python(value)))
    return "\n".join(parts)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize("folder", CORPUS_SKILLS or [None], ids=lambda p: p.name if p else "absent")
def test_corpus_nothing_is_lost(folder):
    """Every code block, rule sentence, numbered step and file reference reaches the IR."""
    if folder is None:
        _require_corpus()
    module = import_skill(folder)
    source = (folder / "SKILL.md").read_text(encoding="utf-8")
    body = source.split("\n---", 1)[1] if source.startswith("---") else source
    everything = _norm(_strings(module))
    for m in _FENCE.finditer(body):
        code = textwrap.dedent(m.group(2)).strip()
        for line in code.split("\n"):
            assert _norm(line) in everything, f"code line lost: {line!r}"
    for m in _NUMBERED.finditer(body):
        assert _norm(m.group(1)) in everything, f"numbered step lost: {m.group(1)!r}"
    rule_texts = _norm(" ".join(op.attr("text") for op in module.walk() if op.name == "ctx.rule"))
    for line in body.split("\n"):
        if _RULE_WORD.search(line) and not line.lstrip().startswith(("#", "|", "```")):
            fragment = _norm(re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", line))
            keyword_part = _RULE_WORD.search(fragment)
            # The sentence holding the rule word is a ctx.rule (inside code it is an example).
            window = fragment[keyword_part.start(): keyword_part.end() + 25]
            in_code = any(window in _norm(m.group(2)) for m in _FENCE.finditer(body))
            assert in_code or window in rule_texts, f"rule lost: {line!r}"
    listed = (folder / "files.txt").read_text().split() if (folder / "files.txt").exists() else []
    resources = {r.attr("path") for r in module.resources()}
    referenced = {r.attr("resource").name for r in module.walk() if r.name == "ctx.ref"}
    by_path = {r.attr("path"): r.attr("sym_name") for r in module.resources()}
    for rel in listed:
        assert rel in resources, f"bundled file lost: {rel}"
        if rel in body:
            assert by_path[rel] in referenced, f"reference to {rel} lost"


# ---- fuzzing: only diagnostics, never an exception -----------------------------------

_markdown_atoms = st.sampled_from(
    ["# H\n", "## Step 1: x\n", "1. do\n", "- item\n", "   - nested\n", "```bash\n", "```\n", "~~~\n",
     "| a | b |\n", "|---|---|\n", "> quote\n", "<!-- c\n", "-->\n", "---\n", "    code\n", "\n",
     "If x, y.\n", "For each file, z.\n", "MUST do.\n", "pip install x\n", "`python scripts/a.py`\n",
     "On macOS, open it.\n", "[l](references/r.md)\n", "Setext\n===\n", "\t\ttab\n", "中文 😀\n"]
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.lists(st.one_of(_markdown_atoms, st.text(max_size=40)), max_size=30).map("".join),
    front=st.one_of(
        st.just("name: t\ndescription: d"),
        st.text(max_size=60),
        st.sampled_from(["name: [a", "description: : :", "name: t\n  bad: indent", "- list", "{}", "name: 1\ndescription: 2"]),
    ),
)
def test_fuzz_import_only_raises_diagnostics(tmp_path, body, front):
    root = tmp_path / "t"
    root.mkdir(exist_ok=True)
    (root / "SKILL.md").write_text(f"---\n{front}\n---\n{body}", encoding="utf-8", errors="replace")
    try:
        module = import_skill(root)
    except SkvmError:
        return
    text = print_module(module)
    assert "skill @" in text


@pytest.mark.skipif(not CORPUS_SKILLS, reason="shared corpus absent")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_truncated_and_mutated_corpus(tmp_path, data):
    folder = data.draw(st.sampled_from(CORPUS_SKILLS))
    text = (folder / "SKILL.md").read_text(encoding="utf-8")
    cut = data.draw(st.integers(0, len(text)))
    text = text[:cut]
    for _ in range(data.draw(st.integers(0, 5))):
        if not text:
            break
        at = data.draw(st.integers(0, len(text) - 1))
        text = text[:at] + data.draw(st.sampled_from(["", "-", "`", "\n", ":", "#", "1. ", "\x00", "\ufffd"])) + text[at + 1:]
    root = tmp_path / "m"
    root.mkdir(exist_ok=True)
    (root / "SKILL.md").write_text(text, encoding="utf-8")
    try:
        import_skill(root)
    except SkvmError:
        pass


# ---- what Markdown back ends rely on (docs/frontend.md, "Attributes for back ends") --------


def test_steps_record_their_source_marker(tmp_path):
    module, _ = lower(tmp_path, "## Workflow\n\n- [ ] Check it.\n- [x] Ship it.\n\n"
                                "## Order\n\n1)  One.\n2)  Two.\n\n### Step 1: Prep\n\nPrep.\n\n### Step 2: Go\n\nGo.\n")
    markers = [op.attr("marker") for op in ops(module) if op.has_attr("marker")]
    assert markers == ["- [ ] ", "- [x] ", "1)  ", "2)  ", "### ", "### "]
    prompts = [op.attr("prompt") for op in ops(module, "llm.step") if op.has_attr("marker")]
    assert prompts[0] == "Check it." and prompts[-1] == "Step 2: Go\n\nGo."


def test_synthesized_ops_are_marked_synthetic(tmp_path):
    module, _ = lower(tmp_path, "## A\n\n1. If it rains, stay in.\n2. For each file, read it.\n"
                                "3. On macOS, use brew.\n4. Run:\n\n   ```bash\n   git fetch\n   git status\n   ```\n\n"
                                "## B\n\n1. One.\n2. Two.\n")
    synthetic = sorted(op.name for op in ops(module) if op.has_attr("synthetic"))
    assert synthetic == ["ctl.for_each", "ctl.if", "env.if", "llm.gen", "llm.judge", "skill.proc", "tool.exec"]
    assert module.lookup("main").has_attr("synthetic")  # the dispatcher
    (fetch, status) = ops(module, "tool.exec")
    assert fetch.has_attr("origin") and fetch.has_attr("marker") and not fetch.has_attr("synthetic")
    assert status.has_attr("synthetic") and not status.has_attr("origin")
    (tmp_path / "g").mkdir()
    guidance, _ = lower(tmp_path / "g", "# Guide\n\nWrite clearly.\n")
    (main,) = guidance.procs()
    assert main.has_attr("synthetic") and main.regions[0].ops[0].has_attr("synthetic")


def test_platform_sections_are_synthetic_env_ifs(tmp_path):
    module, _ = lower(tmp_path, "## macOS\n\nUse brew.\n")
    (env_if,) = ops(module, "env.if")
    assert env_if.has_attr("synthetic") and env_if.regions[0].ops[0].attr("title") == "macOS"


def test_found_requirements_and_mentions_are_inline(tmp_path):
    module, _ = lower(tmp_path, "# T\n\nRun `pip install rich`, then read `references/a.md`.\n",
                      files={"references/a.md": "# A\n"})
    assert all(op.has_attr("inline") for op in ops(module) if op.name in ("env.require", "ctx.ref"))
    assert {op.name for op in ops(module) if op.has_attr("inline")} == {"env.require", "ctx.ref"}


def test_an_exported_folder_is_read_with_its_manifest(tmp_path):
    from skvm.frontend.folder import load_skill_folder

    root = skill(tmp_path, "# T\n", files={
        "scripts/setup-env.sh": "#!/bin/sh\n", "scripts/keep.py": "print(1)\n",
        "skvm-manifest.json": '{"target": "agentskills", "generated": ["SKILL.md", "scripts/setup-env.sh"], '
                              '"resources": [{"path": "assets/x.png", "kind": "asset", "status": "missing"}, '
                              '{"path": "../up", "status": "missing"}, {"path": "scripts/keep.py", "status": "copied"}], '
                              '"moved_to_metadata": ["tags"], "original": {"name": {"from": "T!", "to": "t"}}}'})
    src = load_skill_folder(root)
    assert [(f.rel_path, f.available) for f in src.files] == [("assets/x.png", False), ("scripts/keep.py", True)]
    assert src.export.moved_to_metadata == ("tags",) and src.export.original == (("name", "T!", "t"),)
    module = import_skill(root, DiagnosticEngine(stream=None))
    assert module.meta.attr("name") == "T!" and module.sym_name == "t"
