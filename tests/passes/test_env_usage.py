"""Tests of the env-usage analysis: requirement users, conditions, undeclared binaries."""

from __future__ import annotations

from skvm.ir.parser import parse_module
from skvm.passes.analysis.env_usage import (
    EnvUsageAnalysis,
    compute_env_usage,
    needed_binaries,
    op_needs,
    walk_paths,
)
from skvm.passes.manager import AnalysisManager

SKILL = """
skill @s {
  resource @run = "scripts/run.sh" {kind = script}
  env.require pip "beautifulsoup4"
  env.require go "github.com/owner/tool/cmd/mytool@latest"
  env.require bin "ffmpeg"
  env.if bin "pandoc" {
    ctx.text "P" "pandoc"
  } else {
  }
  proc @main(%t: text) {
    %a = tool.exec ["FOO=1 sudo ffmpeg -i x.mp4 y.mp3 && mytool --x"] {shell} : text
    %b = tool.exec ["python3", "-c", "from bs4 import BeautifulSoup"] : text
    %c = tool.script @run : text
    %d = tool.exec ["./local.sh"] : text
    ctl.return
  }
}
"""


def _module():
    return parse_module(SKILL, "t.skir")


def test_users_are_found_through_shell_prefixes_and_import_maps():
    result = compute_env_usage(_module())
    by_pkg = {r.package: r for r in result.requirements}
    assert [u.how for u in by_pkg["ffmpeg"].users] == ["runs ffmpeg"]
    assert [u.how for u in by_pkg["beautifulsoup4"].users] == ["import bs4"]
    assert [u.path for u in by_pkg["github.com/owner/tool/cmd/mytool@latest"].users] == ["@main#0"]
    assert "bash" not in result.undeclared  # a POSIX shell is assumed
    assert list(result.undeclared) == ["python3"]


def test_conditions_and_paths():
    result = compute_env_usage(_module())
    assert [(c.path, c.kind, c.value, c.branch_ops) for c in result.conditions] == [
        ("#4", "bin", "pandoc", (1, 0))
    ]
    paths = [p for p, _ in walk_paths(_module())]
    assert "#4.0#0" in paths and "@main#3" in paths


def test_needed_binaries_for_probing():
    assert needed_binaries(_module()) == {"ffmpeg", "mytool", "pandoc"}


def test_local_scripts_are_not_binaries():
    module = _module()
    op = module.procs()[0].regions[0].ops[3]
    assert op_needs(op, module) == []


def test_analysis_is_cached_and_prints_deterministically():
    am = AnalysisManager()
    module = _module()
    first = am.get("env-usage", module)
    assert am.get("env-usage", module) is first and am.run_counts["env-usage"] == 1
    text = EnvUsageAnalysis().print(first, module)
    assert text == EnvUsageAnalysis().print(compute_env_usage(module), module)
    assert text.startswith("manager bin (1)\n")


def test_empty_module_prints_a_line():
    module = parse_module("skill @e {\n}\n", "t")
    assert EnvUsageAnalysis().print(compute_env_usage(module), module) == "no environment requirements\n"
