"""The agentskills target is the front end's inverse: import -> export -> import is the identity.

"Identity" is :func:`skvm.ir.compare.equivalent`: equal after removing ``loc``
and ``pos``, nothing else normalised (prompts, context text, resources, meta).
Sources: the 17 corpus skills, every front-end fixture folder and every
back-end ``.skir`` fixture (those are exported once first: export -> import ->
export -> import must give the same module twice).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends._support import FIXTURE_NAMES, corpus_skills, importer, load_fixture
from skvm.backends import emit, write_bundle
from skvm.diagnostics import DiagnosticEngine, SkvmError
from skvm.ir.attributes import UNIT, Keyword, SymbolRef
from skvm.ir.compare import difference, equivalent, strip_locations
from skvm.ir.operation import Op, Region

FRONTEND_FIXTURES = Path(__file__).parents[1] / "frontend" / "fixtures"
SKILL_FIXTURES = sorted(p.parent for p in FRONTEND_FIXTURES.rglob("SKILL.md"))


def _quiet() -> DiagnosticEngine:
    return DiagnosticEngine(stream=None)


def export_and_import(module, source_root, dest: Path, target: str = "agentskills"):
    """(bundle, re-imported module) of ``module`` emitted to ``dest``."""
    bundle = emit(module, target, source_root, _quiet())
    return bundle, importer()(write_bundle(bundle, dest), _quiet())


def assert_round_trip(folder: Path, tmp_path: Path) -> None:
    """import -> agentskills -> import is equivalent, and exporting again gives the same bundle."""
    module = importer()(folder, _quiet())
    bundle, again = export_and_import(module, folder, tmp_path / "once")
    assert equivalent(module, again), difference(module, again)
    bundle2, _ = export_and_import(again, tmp_path / "once", tmp_path / "twice")
    assert bundle2.to_text() == bundle.to_text()


def _corpus():
    skills = corpus_skills()
    if not skills:
        return [pytest.param(None, marks=pytest.mark.skip(reason="../shared/corpus is absent"))]
    return [pytest.param(p, id=p.name) for p in skills]


@pytest.mark.parametrize("skill", _corpus())
def test_corpus_round_trip(skill, tmp_path):
    """Every corpus skill reads back to the same module (resources included)."""
    assert_round_trip(skill, tmp_path)


@pytest.mark.parametrize("folder", SKILL_FIXTURES, ids=lambda p: p.relative_to(FRONTEND_FIXTURES).as_posix())
def test_frontend_fixture_round_trip(folder, tmp_path):
    """Every front-end fixture folder reads back to the same module."""
    assert_round_trip(folder, tmp_path)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_backend_fixture_round_trip(name, tmp_path):
    """A hand-written module, once exported, is a fixpoint of export -> import."""
    module, root = load_fixture(name)
    _, first = export_and_import(module, root, tmp_path / "one")
    bundle, second = export_and_import(first, tmp_path / "one", tmp_path / "two")
    assert equivalent(first, second), difference(first, second)
    again, _ = export_and_import(second, tmp_path / "two", tmp_path / "three")
    assert again.to_text() == bundle.to_text()


def test_round_trip_fixtures_exist():
    """The parametrisations above are not silently empty."""
    assert len(SKILL_FIXTURES) >= 6 and len(FIXTURE_NAMES) >= 3


# ---- the equivalence itself ---------------------------------------------------------------


def _module(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    (root / "SKILL.md").write_text("---\nname: s\ndescription: A skill.\n---\n\n# S\n\n1. First.\n2. Second.\n")
    return importer()(root, _quiet())


def test_equivalence_ignores_locations_only(tmp_path):
    module = _module(tmp_path)
    stripped = strip_locations(module)
    assert all(op.loc is None and op.pos is None for op in stripped.walk())
    assert equivalent(module, stripped) and difference(module, stripped) == ""
    proc = module.lookup("main")
    step = proc.regions[0].ops[0]
    changed = step.with_attrs(prompt=step.attr("prompt") + " ")  # even trailing whitespace counts
    other = module.with_ops([op if op is not proc else op.with_regions(
        [proc.regions[0].with_ops((changed, *proc.regions[0].ops[1:]))]) for op in module.ops])
    assert not equivalent(module, other)
    assert "First. " in difference(module, other)


def test_difference_is_a_unified_diff(tmp_path):
    module = _module(tmp_path)
    shorter = module.with_ops(module.ops[1:])
    diff = difference(module, shorter)
    assert diff.startswith("--- a\n+++ b") and "\n-  meta {" in diff


# ---- what the importer reads from an exported folder ------------------------------------


def _exported(tmp_path, front: str, body: str = "# T\n\nText.\n", files: dict | None = None):
    root = tmp_path / "src"
    root.mkdir()
    (root / "SKILL.md").write_text(f"---\n{front}\n---\n\n{body}")
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    module = importer()(root, _quiet())
    bundle, again = export_and_import(module, root, tmp_path / "out")
    return module, bundle, again, tmp_path / "out"


def test_manifest_and_generated_files_are_not_resources(tmp_path):
    _, bundle, again, out = _exported(
        tmp_path, "name: t\ndescription: d", "# T\n\nRun `pip install requests` first.\n")
    manifest = json.loads(bundle.text("skvm-manifest.json"))
    assert "scripts/setup-env.sh" in manifest["generated"] and (out / "scripts/setup-env.sh").is_file()
    assert [r.attr("path") for r in again.resources()] == []


def test_extensions_and_normalised_meta_are_restored(tmp_path):
    module, bundle, again, _ = _exported(
        tmp_path, "name: My Skill\ndescription: Uses <tags>.\nversion: 2\ntags: [x, y]\nmetadata:\n  owner: me")
    text = bundle.text("SKILL.md")
    assert "name: my-skill" in text and "‹tags›" in text and "version:" in text.split("metadata:")[1]
    manifest = json.loads(bundle.text("skvm-manifest.json"))
    assert manifest["moved_to_metadata"] == ["tags", "version"]
    assert manifest["original"]["name"] == {"from": "My Skill", "to": "my-skill"}
    assert again.meta == attrs.evolve(module.meta, loc=again.meta.loc)
    assert again.sym_name == module.sym_name == "my_skill"


def test_edited_frontmatter_wins_over_the_manifest(tmp_path):
    """The manifest restores a value only while the frontmatter still holds what was written."""
    _, _, _, out = _exported(tmp_path, "name: My Skill\ndescription: d\nversion: 2")
    text = (out / "SKILL.md").read_text().replace("name: my-skill", "name: renamed")
    text = text.replace('  version: "2"', "").replace("  version: 2\n", "")
    (out / "SKILL.md").write_text(text)
    again = importer()(out, _quiet())
    assert again.meta.attr("name") == "renamed"
    assert not again.meta.has_attr("extensions")


def test_missing_resources_come_back_from_the_manifest(tmp_path):
    module, _, again, _ = _exported(tmp_path, "name: t\ndescription: d", "# T\n\nSee `scripts/a.py`.\n",
                                    files={"scripts/a.py": "print(1)\n"})
    assert [r.attr("path") for r in again.resources()] == ["scripts/a.py"]
    assert again.resources()[0].attr("sha256") == module.resources()[0].attr("sha256")
    # Not copied (no source folder): listed as missing, like the corpus layout.
    bundle = emit(module, "agentskills", None, _quiet())
    third = importer()(write_bundle(bundle, tmp_path / "nosrc"), _quiet())
    (res,) = third.resources()
    assert res.has_attr("missing") and res.attr("kind").name == "script" and not res.has_attr("sha256")


def test_a_malformed_manifest_is_an_ordinary_file(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    (root / "SKILL.md").write_text("---\nname: s\ndescription: d\n---\n\nText.\n")
    (root / "skvm-manifest.json").write_text("[not json")
    module = importer()(root, _quiet())
    assert [r.attr("path") for r in module.resources()] == ["skvm-manifest.json"]


# ---- how imported structure renders ------------------------------------------------------


def _import(tmp_path, body: str, name: str = "t"):
    root = tmp_path / name
    root.mkdir()
    (root / "SKILL.md").write_text(f"---\nname: {name}\ndescription: d\n---\n\n" + textwrap.dedent(body))
    return importer()(root, _quiet()), root


def _body(module, root, target="agentskills") -> str:
    return emit(module, target, root, _quiet()).text("SKILL.md").split("---\n", 2)[2]


def test_step_source_written_back_exactly(tmp_path):
    body = textwrap.dedent("""\
        # T

        ## Workflow

        - [ ] Check:
          - nested
        - If it is big, split it.
        - Otherwise, keep it.
        - For each part, summarise it.
        - On Windows, use PowerShell.

        ### Step 1: Prepare

        Prepare.

        ### Step 2: Finish

        Finish.
        """)
    module, root = _import(tmp_path, body)
    assert _body(module, root).strip() == body.strip()


def test_synthetic_ops_render_nothing_of_their_own(tmp_path):
    module, root = _import(tmp_path, "# T\n\n1. If it rains, stay in.\n2. For each file, read it.\n")
    names = {op.name for op in module.walk() if op.has_attr("synthetic")}
    assert names == {"llm.judge", "ctl.if", "llm.gen", "ctl.for_each"}
    text = _body(module, root, "claude-code")
    assert "If yes" not in text and "JSON array" not in text
    assert "1. If it rains, stay in.\n2. For each file, read it." in text


def test_parallelised_synthetic_loop_keeps_the_harness_phrasing(tmp_path):
    """A pass turning the synthetic ctl.for_each into ctl.map gets the map's wording."""
    module, root = _import(tmp_path, "# T\n\n1. Read the folder.\n2. For each file, summarise it.\n")

    def to_map(op: Op) -> Op:
        if op.name != "ctl.for_each":
            return op
        return Op.build("ctl.map", op.operands, op.results, {**op.attributes.to_dict(), "max_width": 4},
                        op.regions, op.loc)

    main = module.lookup("main")
    new_main = main.with_regions([Region(tuple(to_map(o) for o in main.regions[0].ops), main.regions[0].args)])
    mapped = module.with_ops([new_main if op is main else op for op in module.ops])
    text = _body(mapped, root, "claude-code")
    assert "dispatch one sub-agent with the Task tool" in text
    assert "List, as a JSON array of strings" in text  # the listing the map runs over is shown
    assert "1. For each file, summarise it." in text  # the step, nested under the map


def test_harness_targets_point_at_the_setup_script(tmp_path):
    module, root = _import(tmp_path, "# T\n\nRun `pip install requests` first.\n")
    assert all(op.has_attr("inline") for op in module.walk() if op.name == "env.require")
    assert "scripts/setup-env.sh" not in _body(module, root)
    text = _body(module, root, "claude-code")
    assert text.index("# T") < text.index("## Setup") and "`scripts/setup-env.sh` once first" in text
    assert "## Requirements" not in text


def test_generated_items_renumber_a_list(tmp_path):
    """A list mixing source steps and a generated command script is numbered afresh."""
    module, root = _import(tmp_path, "# T\n\n3. Run `git fetch --all` now.\n4. Run `git status --short` now.\n"
                                     "5. Read the result.\n")
    text = _body(module, root, "claude-code")
    assert "1. Run `scripts/run-1.sh`" in text and "2. Read the result." in text
    assert "3. Run `git fetch" in _body(module, root)


def test_context_details_render_as_the_source(tmp_path):
    body = "# T\n\n<!-- note -->\n\n```python title=x.py\nprint(1)\n```\n\n    indented\n"
    module, root = _import(tmp_path, body)
    text = _body(module, root)
    assert "<!-- note -->" in text and "```python title=x.py" in text and "\n    indented" in text


def test_hand_written_refs_and_rules_still_render(tmp_path):
    """Ops not marked inline (from passes, hand-written IR) get their own sections."""
    module, root = _import(tmp_path, "# T\n\nText.\n", name="h")
    extra = (
        Op.build("ctx.rule", attributes={"severity": Keyword("must"), "text": "Be brief."}),
        Op.build("env.require", attributes={"manager": Keyword("pip"), "package": "rich"}),
    )
    text = _body(module.with_ops(module.ops + extra), root)
    assert "## Rules\n\n- **MUST** Be brief." in text and "- pip: `rich`" in text
    ref = Op.build("ctx.ref", attributes={"resource": SymbolRef("x"), "inline": UNIT})
    assert "x" not in _body(module.with_ops(module.ops + (ref,)), root).split("Text.")[1]


# ---- property: any skill assembled from Markdown pieces round-trips ------------------------

_PIECES = st.sampled_from([
    "# H\n", "## Step 1: x\n", "### Step 2: y\n", "1. do\n", "2. two\n", "10. ten\n", "- item\n", "- [ ] box\n",
    "   - nested\n", "   more\n", "  * star\n", "```bash\n", "```\n", "~~~\n", "| a | b |\n", "|---|---|\n",
    "> quote\n", "<!-- c\n", "-->\n", "---\n", "    code\n", "\n", "If x, y.\n", "Otherwise, w.\n",
    "For each file, z.\n", "MUST do.\n", "pip install x\n", "`python scripts/a.py`\n", "On macOS, open it.\n",
    "If `jq` is not installed, x.\n", "[l](references/r.md)\n", "Setext\n===\n", "\t\ttab\n", "中文 😀\n",
    "## Workflow\n", "## Linux\n", "#\n", " ## H ##\n", "<div>\n", "x  \n",
])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.lists(_PIECES, min_size=1, max_size=25).map("".join))
def test_assembled_skills_round_trip(tmp_path_factory, body):
    """import -> agentskills -> import is equivalent for skills built from tricky pieces."""
    tmp = tmp_path_factory.mktemp("prop")
    root = tmp / "t"
    root.mkdir()
    (root / "SKILL.md").write_text("---\nname: t\ndescription: d\n---\n" + body, encoding="utf-8")
    try:
        module = importer()(root, _quiet())
    except SkvmError:
        return
    _, again = export_and_import(module, root, tmp / "out")
    assert equivalent(module, again), difference(module, again)
