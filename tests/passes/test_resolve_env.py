"""Tests of skvm.environment and the resolve-env transform (bind, fold, setup plan)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from skvm.cli.opt import OptDriver
from skvm.diagnostics import DiagnosticEngine, Severity, SkvmError
from skvm.environment import (
    Environment,
    clear_probe_cache,
    environment_from_dict,
    load_environment,
    probe_host,
)
from skvm.ir.parser import parse_module
from skvm.ir.printer import print_module
from skvm.ir.verifier import verify
from skvm.passes.base import PassContext
from skvm.passes.manager import PassManager
from skvm.passes.pipeline import parse_pipeline
from skvm.passes.transforms.resolve_env import decide, resolve_module, setup_plan

INPUTS = Path(__file__).parents[1] / "filecheck" / "Inputs"
LINUX = INPUTS / "env-linux.json"


def _run(text: str, pipeline: str, ctx: PassContext | None = None):
    ctx = ctx or PassContext(diagnostics=DiagnosticEngine(stream=None, remark_filter=".*"), extra={"stats": {}})
    module = parse_module(text, "t.skir")
    out = PassManager(parse_pipeline(pipeline), ctx).run(module)
    return out, ctx


SKILL = """
skill @s {
  env.require pip "pypdf" {version = ">=4"}
  env.require bin "pdftotext"
  env.require bin "git"
  env.require env "OPENAI_API_KEY"
  env.require os "macos"
  env.if os "linux" { ctx.text "L" "linux" } else { ctx.text "O" "other" }
  proc @main(%t: text) -> text {
    %r = env.if bin "jq" {
      %a = tool.exec ["jq", "."] : text
      ctl.yield (%a)
    } else {
      ctl.yield (%t)
    } : text
    %n = ctl.for_each (%t) as (%e: text) {
      %m = env.if bin "nope" { ctl.yield (%e) } else { %z = llm.gen "z" (%e, %r) : text
        ctl.yield (%z) } : text
      ctl.yield (%m)
    } : list<text>
    ctl.return (%r)
  }
}
"""


def test_load_environment_round_trips_and_normalises():
    env = load_environment(LINUX)
    assert env.os == "linux" and env.arch == "x86_64" and env.network is False
    assert env.python_package("pyyaml") == "6.0.1" and env.python_package("PyYAML") == "6.0.1"
    assert environment_from_dict(env.to_dict()) == env
    assert json.loads(env.to_json())["package_managers"] == ["apt", "npm", "pip"]


def test_minimal_environment_fields_are_unknown():
    env = environment_from_dict({"os": "windows"})
    assert env.has_binary("git") is None and env.has_env_var("HOME") is None
    assert env.python_packages is None


@pytest.mark.parametrize(
    "name, line, fragment",
    [
        ("env-bad-schema.json", 2, "'solaris' is not one of"),
        ("env-bad-schema.json", 6, "unknown key 'colour'"),
        ("env-bad-json.json", 3, "not valid JSON"),
    ],
)
def test_bad_environment_files_are_located_errors(name, line, fragment):
    with pytest.raises(SkvmError) as info:
        load_environment(INPUTS / name)
    hits = [d for d in info.value.diagnostics if fragment in d.message]
    assert hits and hits[0].loc.line == line and hits[0].loc.file.endswith(name)


def test_secret_values_are_never_echoed():
    with pytest.raises(SkvmError) as info:
        load_environment(INPUTS / "env-bad-schema.json")
    assert all("secret" not in d.message for d in info.value.diagnostics)


def test_driver_reports_bad_env_without_traceback(tmp_path):
    src = tmp_path / "s.skir"
    src.write_text('skill @s {\n  env.require pip "x"\n}\n')
    err = io.StringIO()
    code = OptDriver(
        [str(src), f"-passes=resolve-env{{env={INPUTS / 'env-bad-json.json'}}}"], stdout=io.StringIO(), stderr=err
    ).run()
    assert code == 1
    assert "env-bad-json.json:3:38: error: environment file is not valid JSON" in err.getvalue()
    assert "Traceback" not in err.getvalue()


def test_probe_host_is_cached():
    from skvm.environment import _probe_base

    clear_probe_cache()
    first = probe_host(["definitely-not-a-binary-xyz"])
    second = probe_host(["definitely-not-a-binary-xyz"])
    # The second call is served from the per-process cache: no new probe ran.
    assert _probe_base.cache_info().hits >= 1 and _probe_base.cache_info().misses == 1
    assert first == second
    assert first.os in ("linux", "macos", "windows") and first.python
    assert first.python_package("attrs")  # skvm depends on attrs
    assert first.has_binary("definitely-not-a-binary-xyz") is False
    # Names only: the probe records which variables exist, never their values.
    assert all(isinstance(v, str) and "=" not in v for v in first.env_vars)


def test_resolve_binds_folds_and_verifies():
    out, ctx = _run(SKILL, f"resolve-env{{env={LINUX}}}")
    assert verify(out) == []
    text = print_module(out)
    assert "env.require" not in text
    assert 'ctx.text "L" "linux"' in text and '"other"' not in text
    # jq present: its branch inlined; uses of %r now use %a.
    assert "ctl.return (%a)" in text
    # nope absent: the else branch inlined inside the loop, the yield renamed.
    assert "ctl.yield (%z)" in text and "env.if" not in text
    stats = ctx.extra["stats"]
    assert stats["resolve-env.env-if-folded"] == 3
    assert stats["resolve-env.missing"] == 4 and stats["resolve-env.present"] == 1
    warnings = ctx.diagnostics.of(Severity.WARNING)
    assert [w.message for w in warnings] == [
        "resolve-env: the skill requires os macos but the environment is linux"
    ]


def test_resolve_is_idempotent():
    once, _ = _run(SKILL, f"resolve-env{{env={LINUX}}}")
    ctx = PassContext()
    twice = PassManager(parse_pipeline(f"resolve-env{{env={LINUX}}}"), ctx).run(once)
    assert twice is once


def test_option_default_comes_from_ctx_env():
    ctx = PassContext(env=str(LINUX))
    out, _ = _run('skill @s {\n  env.require bin "git"\n}\n', "resolve-env", ctx)
    assert 'path = "/usr/bin/git"' in print_module(out)


def test_host_environment_is_the_default():
    out, _ = _run('skill @s {\n  env.require python "python" {version = ">=3.8"}\n}\n', "resolve-env")
    assert "status = present" in print_module(out)


def test_decide_table():
    env = Environment(os="linux", arch="arm64", python="3.11.7", binaries={"jq": "/x"}, env_vars=["HOME"])
    cases = {
        'env.if os "darwin" {\n} else {\n}': False,
        'env.if os "linux" {negate} {\n} else {\n}': False,
        'env.if arch "aarch64" {\n} else {\n}': True,
        'env.if bin "jq" {\n} else {\n}': True,
        'env.if env "TOKEN" {\n} else {\n}': False,
        'env.if python ">=3.12" {\n} else {\n}': False,
        'env.if python "3.11" {\n} else {\n}': True,
    }
    for text, want in cases.items():
        module = parse_module("skill @s {\n" + text + "\n}\n", "t.skir")
        assert decide(module.body.ops[0], env) is want, text
    unknown = Environment(os="linux")
    module = parse_module('skill @s {\nenv.if bin "jq" {\n} else {\n}\n}\n', "t.skir")
    assert decide(module.body.ops[0], unknown) is None


def test_setup_plan_checks_before_installing():
    out, _ = _run(SKILL, f"resolve-env{{env={LINUX}}}")
    plan = setup_plan(out)
    assert plan[0].startswith("python -c ") and plan[0].endswith("|| python -m pip install 'pypdf>=4'")
    assert "command -v pdftotext >/dev/null 2>&1 || apt-get install -y poppler-utils" in plan
    assert any(line.startswith('[ -n "${OPENAI_API_KEY:-}" ] || echo') for line in plan)
    assert "# skvm: this skill requires os macos" in plan
    assert all("apt-get update" not in line and "sudo" not in line for line in plan)
    assert not any("git" in line for line in plan)  # present: nothing to do
    assert len(plan) == len(set(plan))


def test_setup_plan_lines_are_valid_shell(tmp_path):
    import shutil
    import subprocess

    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not available to syntax-check the plan")
    out, _ = _run(SKILL, f"resolve-env{{env={LINUX}}}")
    script = tmp_path / "setup.sh"
    script.write_text("\n".join(setup_plan(out)) + "\n")
    assert subprocess.run([bash, "-n", str(script)]).returncode == 0


def test_never_installs_anything(monkeypatch):
    import subprocess

    def forbidden(*args, **kwargs):
        raise AssertionError("resolve-env must not start processes")

    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(subprocess, "run", forbidden)
    clear_probe_cache()
    _run(SKILL, "resolve-env{env=host}")
    _run(SKILL, f"resolve-env{{env={LINUX}}}")


def test_env_if_results_need_a_yield():
    bad = """
skill @s {
  proc @main(%t: text) -> text {
    %r = env.if os "linux" {
    } else {
      ctl.yield (%t)
    } : text
    ctl.return (%r)
  }
}
"""
    module = parse_module(bad, "t.skir")
    with pytest.raises(SkvmError) as info:
        resolve_module(module, Environment(os="linux"), PassContext())
    assert info.value.diagnostics[0].loc.line == 4
