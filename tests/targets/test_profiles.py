"""Tests for target capability profiles: built-ins, schema, name resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skvm.capabilities import PRIMITIVES
from skvm.diagnostics import SkvmError, render
from skvm.targets import (
    TargetProfile,
    builtin_targets,
    load_target,
    profile_from_dict,
    uniform_target,
    validate_profile,
)
from skvm.targets.profile import profile_schema

PROFILES = Path(__file__).parents[2] / "skvm" / "targets" / "profiles"
SHARED = Path(__file__).parents[2] / ".." / "shared" / "profiles"

BUILTINS = [
    "claude-opus-4.6@bare-agent",
    "deepseek-v3.2@bare-agent",
    "gpt-5.4@bare-agent",
    "qwen3.5-35b-a3b@bare-agent",
    "qwen3.5-9b@bare-agent",
]


def _messages(exc: SkvmError) -> str:
    return "\n".join(render(d) for d in exc.diagnostics)


def _gpt() -> dict:
    return json.loads((PROFILES / "gpt-5.4@bare-agent.json").read_text())


def test_builtin_names():
    assert builtin_targets() == BUILTINS


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_loads_and_covers_the_catalog(name):
    profile = load_target(name)
    assert isinstance(profile, TargetProfile)
    assert profile.short_key == name
    known = {p for p, _ in profile.levels}
    # Every primitive is either measured or declared missing, never both.
    assert known | profile.missing == set(PRIMITIVES)
    assert not known & profile.missing
    assert all(0 <= v <= 3 for _, v in profile.levels)
    assert profile.provenance and profile.measured


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_figures_match_the_measurements(name):
    if not SHARED.is_dir():
        pytest.skip("../shared/profiles is absent: nothing to compare the shipped figures to")
    original = json.loads((SHARED / f"{name}.json").read_text())
    profile = load_target(name)
    assert profile.to_dict()["capabilities"] == original["capabilities"]
    assert sorted(profile.missing) == sorted(original["missing"])
    assert profile.model == original["model"]
    assert profile.measured == original["measured"]


def test_known_figures():
    qwen = load_target("qwen3.5-9b@bare-agent")
    assert qwen.level("gen.code.shell") == 0
    assert qwen.level("gen.regex") == 3
    assert qwen.level("tool.exec") == 0
    assert load_target("gpt-5.4@bare-agent").level("reason.arithmetic") == 1
    assert load_target("claude-opus-4.6@bare-agent").level("follow.delegation") == 0


def test_missing_is_unknown_not_l0():
    qwen = load_target("qwen3.5-9b@bare-agent")
    assert "tool.web" in qwen.missing
    assert qwen.level("tool.web") is None
    assert not qwen.is_known("tool.web")
    # An L0 primitive is known and 0: the two cases must stay distinct.
    assert qwen.level("tool.browser") == 0 and qwen.is_known("tool.browser")
    assert load_target("gpt-5.4@bare-agent").level("tool.web") == 3


@pytest.mark.parametrize(
    "spec",
    [
        "qwen3.5-9b@bare-agent",
        "qwen/qwen3.5-9b@bare-agent",
        "qwen3.5-9b@bare",
        "qwen/qwen3.5-9b@bare",
        "Qwen3.5-9B@Bare-Agent",
        "  qwen3.5-9b@bare-agent ",
    ],
)
def test_name_resolution_variants(spec):
    assert load_target(spec).key == "qwen/qwen3.5-9b@bare-agent"


def test_similar_names_do_not_collide():
    assert load_target("qwen3.5-35b-a3b@bare").model == "qwen/qwen3.5-35b-a3b"


def test_load_by_path(tmp_path):
    data = _gpt()
    data["model"] = "acme/custom-1"
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(data))
    profile = load_target(str(path))
    assert profile.key == "acme/custom-1@bare-agent"
    assert profile.level("tool.web") == 3
    assert load_target(str(PROFILES / "deepseek-v3.2@bare-agent.json")).level("gen.text.long") == 0


def test_unknown_target_lists_builtins():
    with pytest.raises(SkvmError) as info:
        load_target("qwen3.5-9@bare")
    text = _messages(info.value)
    assert "unknown target 'qwen3.5-9@bare'" in text
    assert "did you mean 'qwen3.5-9b@bare-agent'" in text
    for name in BUILTINS:
        assert name in text


def test_unknown_harness():
    with pytest.raises(SkvmError, match="unknown target"):
        load_target("gpt-5.4@claude-code")


def test_malformed_spec():
    with pytest.raises(SkvmError) as info:
        load_target("gpt-5.4")
    assert "expected <model>@<harness>" in _messages(info.value)


def test_missing_file():
    with pytest.raises(SkvmError, match="cannot read target profile"):
        load_target("no/such/profile.json")


def test_invalid_json_is_located(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "model": "x",\n  oops\n}')
    with pytest.raises(SkvmError) as info:
        load_target(str(path))
    diag = info.value.diagnostics[0]
    assert diag.loc is not None and diag.loc.line == 3
    assert "not valid JSON" in diag.message


def test_invalid_level_names_json_path(tmp_path):
    data = _gpt()
    data["capabilities"]["tool.exec"] = "L4"
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data, indent=2))
    with pytest.raises(SkvmError) as info:
        load_target(str(path))
    diag = info.value.diagnostics[0]
    assert "$.capabilities['tool.exec']" in diag.message
    assert "'L4' is not a level" in diag.message
    # Located on the offending key's line in the file.
    line = path.read_text().split("\n")[diag.loc.line - 1]
    assert '"tool.exec"' in line


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.pop("model"), "'model' is a required property"),
        (lambda d: d.pop("capabilities"), "'capabilities' is a required property"),
        (
            lambda d: d["capabilities"].update({"tool.webb": "L1"}),
            "'tool.webb' is not a capability primitive",
        ),
        (lambda d: d.update(missing=["tool.exec"]), "both missing and measured"),
        (lambda d: d.update(missing=["tool.websurf"]), "$.missing[0]"),
        (lambda d: d.update(harness="a@b"), "$.harness"),
        (lambda d: d.update(measured="April 2026"), "$.measured"),
        (lambda d: d.update(extra=1), "Additional properties"),
        (lambda d: d.update(pass_rates={"tool.exec": {"L1": 1.5}}), "$.pass_rates['tool.exec'].L1"),
        (lambda d: d.update(pass_rates={"tool.exec": {"L4": 0.5}}), "$.pass_rates['tool.exec']"),
    ],
)
def test_schema_rejections(mutate, fragment):
    data = _gpt()
    mutate(data)
    diags = validate_profile(data)
    assert diags, "expected the profile to be rejected"
    assert any(fragment in d.message for d in diags), [d.message for d in diags]
    with pytest.raises(SkvmError):
        profile_from_dict(data)


def test_misspelled_primitive_gets_a_suggestion():
    data = _gpt()
    data["capabilities"]["tool.webb"] = "L1"
    diags = validate_profile(data)
    assert any("did you mean 'tool.web'" in n.message for d in diags for n in d.notes)


def test_pass_rates_round_trip():
    data = _gpt()
    data["pass_rates"] = {"tool.exec": {"L1": 1.0, "L2": 0.67, "L3": 0.33}}
    data["notes"] = "hand-edited"
    profile = profile_from_dict(data)
    assert profile.pass_rate("tool.exec", "L2") == 0.67
    assert profile.pass_rate("tool.exec", "L1") == 1.0
    assert profile.pass_rate("tool.web", "L1") is None
    again = profile_from_dict(profile.to_dict())
    assert again == profile
    assert validate_profile(profile.to_dict()) == []


def test_builtins_serialize_to_valid_profiles():
    for name in BUILTINS:
        assert validate_profile(load_target(name).to_dict()) == []


def test_schema_is_draft_2020_12_and_lists_the_catalog():
    schema = profile_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$defs"]["primitive"]["enum"] == list(PRIMITIVES)


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_uniform_target(level):
    profile = uniform_target(level)
    assert all(profile.level(p) == level for p in PRIMITIVES)
    assert validate_profile(profile.to_dict()) == []


def test_uniform_target_with_missing_and_range():
    profile = uniform_target(2, missing=("tool.web",))
    assert profile.level("tool.web") is None and profile.level("tool.exec") == 2
    with pytest.raises(ValueError):
        uniform_target(4)


def test_profiles_are_hashable_values():
    assert load_target("gpt-5.4@bare") == load_target("openai/gpt-5.4@bare-agent")
    assert len({uniform_target(1), uniform_target(1), uniform_target(2)}) == 2
