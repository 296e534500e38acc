"""Tests for the interpreter: deterministic ops, types, checks, control flow, concurrency,
the sandbox seen through the VM, and resource staging (no model involved)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from skvm.diagnostics import SkvmError
from skvm.ir.parser import parse_module
from skvm.runtime.interpreter import Interpreter, OpFailure, RunOptions
from skvm.runtime.plan import build_plan
from skvm.runtime.traces import TraceStore

REPO = Path(__file__).resolve().parents[2]
WORD_STATS = REPO / "examples" / "word-stats"


def skir(body: str, meta: str = "", extra: str = "") -> str:
    """A module with one procedure @main(%task: text) whose body is ``body``."""
    meta_line = f"  meta {{{meta}}}\n" if meta else ""
    return (
        "skill @t {\n" + meta_line + textwrap.indent(textwrap.dedent(extra), "  ")
        + "  proc @main(%task: text) -> text {\n"
        + textwrap.indent(textwrap.dedent(body), "    ")
        + "  }\n}\n"
    )


def run(text: str, tmp_path: Path, inputs=None, **options):
    """Parse and run ``text`` in ``tmp_path/work``; return (values, interpreter)."""
    module = parse_module(text, "t.skir")
    work = tmp_path / "work"
    interp = Interpreter(module, RunOptions(workdir=work, **options))
    result = interp.run("main", inputs or {"task": "the task"})
    return result.values, interp


# ------------------------------------------------------------------ commands and files


def test_exec_write_read_return(tmp_path: Path) -> None:
    text = skir(
        """
        %a = tool.exec ["echo", "hello", %task] : text
        %p = tool.write "out/a.txt" (%a) : path
        %r = tool.read "out/a.txt" : text
        ctl.return (%r)
        """
    )
    values, _ = run(text, tmp_path)
    assert values == ("hello the task\n",)
    assert (tmp_path / "work" / "out" / "a.txt").read_text() == "hello the task\n"


def test_shell_exec_pipeline(tmp_path: Path) -> None:
    text = skir(
        """
        %a = tool.exec ["printf 'b\\na\\n' | sort"] {shell} : text
        ctl.return (%a)
        """
    )
    assert run(text, tmp_path)[0] == ("a\nb\n",)


def test_failing_command_reports_location_and_stderr(tmp_path: Path) -> None:
    text = skir(
        """
        %a = tool.exec ["sh", "-c", "echo broken >&2; exit 3"] : text loc("SKILL.md":7:1)
        ctl.return (%a)
        """
    )
    with pytest.raises(OpFailure) as info:
        run(text, tmp_path)
    diag = info.value.diagnostics[0]
    assert str(diag.loc) == "SKILL.md:7:1"
    assert "exited with status 3" in diag.message and "broken" in diag.message


def test_missing_binary_points_at_requirement(tmp_path: Path) -> None:
    text = skir(
        """
        %a = tool.exec ["skvm-no-such-tool-xyz", "x"] : text
        ctl.return (%a)
        """,
        extra='env.require bin "skvm-no-such-tool-xyz" loc("SKILL.md":3:1)\n',
    )
    module = parse_module(text, "t.skir")
    interp = Interpreter(module, RunOptions(workdir=tmp_path))
    with pytest.raises(OpFailure) as info:
        interp.run("main", {})
    diag = info.value.diagnostics[0]
    assert "status 127" in diag.message
    assert diag.notes and str(diag.notes[0].loc) == "SKILL.md:3:1"
    assert any("skvm-no-such-tool-xyz" in w.message for w in interp.warnings)


# ------------------------------------------------------------------ types and checks


def test_json_schema_result_is_validated(tmp_path: Path) -> None:
    schema = '{\\"type\\": \\"object\\", \\"required\\": [\\"n\\"]}'
    good = skir(
        f"""
        %a = tool.exec ["echo", "{{\\"n\\": 3}}"] : json<"{schema}">
        ctl.return (%a)
        """
    )
    assert run(good, tmp_path)[0] == ('{"n": 3}',)
    bad = skir(
        f"""
        %a = tool.exec ["echo", "{{\\"m\\": 3}}"] : json<"{schema}">
        ctl.return (%a)
        """
    )
    with pytest.raises(OpFailure, match="does not match its schema.*'n' is a required property"):
        run(bad, tmp_path)


def test_bool_and_list_coercion(tmp_path: Path) -> None:
    text = skir(
        """
        %ok = tool.exec ["echo", "true"] : bool
        %r = ctl.if (%ok) {
          %xs = tool.exec ["printf", "a\\nb\\n"] : list<text>
          %n = tool.exec ["echo", %xs] : text
          ctl.yield (%n)
        } else {
          ctl.yield (%task)
        } : text
        ctl.return (%r)
        """
    )
    assert run(text, tmp_path)[0] == ('["a", "b"]\n',)


def test_checks_are_enforced(tmp_path: Path) -> None:
    ok = skir(
        """
        %p = tool.write "a.json" (%task) : path
        check.exists "a.json"
        check.cmd ["test", "-s", "a.json"]
        ctl.return (%task)
        """
    )
    assert run(ok, tmp_path)[0] == ("the task",)
    missing = skir(
        """
        check.exists "nope.txt"
        ctl.return (%task)
        """
    )
    with pytest.raises(OpFailure, match="'nope.txt' does not exist"):
        run(missing, tmp_path)
    schema = skir(
        """
        %a = tool.exec ["echo", "[1, 2]"] : json
        check.schema (%a) {schema = "{\\"type\\": \\"object\\"}"}
        ctl.return (%task)
        """
    )
    with pytest.raises(OpFailure, match="is not of type 'object'"):
        run(schema, tmp_path)
    cmd = skir(
        """
        check.cmd ["false"]
        ctl.return (%task)
        """
    )
    with pytest.raises(OpFailure, match="check.cmd failed"):
        run(cmd, tmp_path)


def test_missing_input_is_a_diagnostic(tmp_path: Path) -> None:
    text = "skill @t {\n  proc @main(%n: int) -> text {\n    ctl.return (%n)\n  }\n}\n"
    module = parse_module(text, "t.skir")
    with pytest.raises(SkvmError, match="needs input %n: int"):
        Interpreter(module, RunOptions(workdir=tmp_path)).run("main", {})
    with pytest.raises(SkvmError, match="input %n: expected int"):
        Interpreter(module, RunOptions(workdir=tmp_path)).run("main", {"n": "x"})


# ------------------------------------------------------------------ control flow


def test_for_each_map_and_call(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """
        skill @t {
          proc @main(%task: text) -> text {
            %xs = tool.exec ["printf", "a\\nb\\nc\\n"] : list<text>
            %seq = ctl.for_each (%xs) as (%x: text) {
              %u = ctl.call @upper (%x) : text
              ctl.yield (%u)
            } : list<text>
            %par = ctl.map (%xs) {max_width = 2} as (%y: text) {
              %v = tool.exec ["echo", %y, %y] : text
              ctl.yield (%v)
            } : list<text>
            %j = tool.exec ["echo", %seq, %par] : text
            ctl.return (%j)
          }
          proc @upper(%s: text) -> text {
            %o = tool.exec ["sh", "-c", "printf %s \\"$0\\" | tr a-z A-Z", %s] : text
            ctl.return (%o)
          }
        }
        """
    )
    values, _ = run(text, tmp_path)
    assert values == ('["A", "B", "C"] ["a a\\n", "b b\\n", "c c\\n"]\n',)


def test_parallel_branches_run_concurrently_and_join_in_order(tmp_path: Path) -> None:
    branches = "".join(
        f' {{\n  %b{i} = tool.exec ["sh", "-c", "sleep 0.4; echo {i}"] : text\n  ctl.yield (%b{i})\n}}'
        for i in range(4)
    )
    text = skir(
        f"""
        %r0, %r1, %r2, %r3 = ctl.parallel {{kind = tlp}}{branches} : text, text, text, text
        %j = tool.exec ["echo", %r0, %r1, %r2, %r3] : text
        ctl.return (%j)
        """
    )
    start = time.perf_counter()
    values, _ = run(text, tmp_path)
    elapsed = time.perf_counter() - start
    assert values == ("0\n 1\n 2\n 3\n\n",)
    assert elapsed < 1.2, f"4 x 0.4 s branches took {elapsed:.2f} s: not concurrent"


def test_parallel_failure_cancels_siblings(tmp_path: Path) -> None:
    text = skir(
        """
        %a, %b = ctl.parallel {kind = tlp} {
          %x = tool.exec ["sh", "-c", "exit 1"] : text loc("SKILL.md":4:1)
          ctl.yield (%x)
        } {
          %y = tool.exec ["sleep", "2"] : text
          %z = tool.write "late.txt" (%y) : path
          ctl.yield (%z)
        } : text, path
        ctl.return (%a)
        """
    )
    with pytest.raises(OpFailure) as info:
        run(text, tmp_path)
    assert str(info.value.diagnostics[0].loc) == "SKILL.md:4:1"
    assert not (tmp_path / "work" / "late.txt").exists()
    store = TraceStore(tmp_path / "work" / ".skvm" / "traces.sqlite")
    outcomes = {op["op_name"]: op["outcome"] for op in store.ops(store.runs()[-1]["run_id"])}
    store.close()
    assert "tool.write" not in outcomes  # cancelled before it started
    assert outcomes["ctl.parallel"] == "failed"


def test_map_collect_errors(tmp_path: Path) -> None:
    text = skir(
        """
        %xs = tool.exec ["printf", "0\\n1\\n0\\n"] : list<text>
        %rs = ctl.map (%xs) {collect_errors} as (%x: text) {
          %v = tool.exec ["sh", "-c", "exit $0", %x] : text
          ctl.yield (%x)
        } : list<text>
        %j = tool.exec ["echo", %rs] : text
        ctl.return (%j)
        """
    )
    values, interp = run(text, tmp_path)
    assert values == ('["0", null, "0"]\n',)
    assert any("branch 1 failed (collected)" in w.message for w in interp.warnings)


def test_env_if_runs_on_the_host(tmp_path: Path) -> None:
    text = skir(
        """
        env.if bin "sh" {
          %a = tool.write "has-sh" (%task) : path
        } else {
          %b = tool.write "no-sh" (%task) : path
        }
        env.if bin "skvm-absent-binary" {negate} {
          %c = tool.write "no-absent" (%task) : path
        } else {
        }
        ctl.return (%task)
        """
    )
    run(text, tmp_path)
    assert sorted(p.name for p in (tmp_path / "work").iterdir() if not p.name.startswith(".")) == [
        "has-sh",
        "no-absent",
    ]


def test_jit_solid_falls_back_to_its_region(tmp_path: Path) -> None:
    text = skir(
        """
        %s = jit.solid ["false"] (%task) {guard = "g", hits = 3} {
          %f = tool.exec ["echo", "fallback"] : text
          ctl.yield (%f)
        } : text
        %t = jit.solid ["echo", "solid"] (%task) {guard = "g", hits = 3} {
          %g = tool.exec ["echo", "unused"] : text
          ctl.yield (%g)
        } : text
        %j = tool.exec ["echo", %s, %t] : text
        ctl.return (%j)
        """
    )
    assert run(text, tmp_path)[0] == ("fallback\n solid\n\n",)


# ------------------------------------------------------------------ sandbox through the VM


@pytest.mark.parametrize(
    "path",
    ["../escape.txt", "/tmp/skvm-escape-test.txt", "link/escape.txt"],
)
def test_writes_outside_the_workdir_are_stopped(tmp_path: Path, path: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "link").symlink_to(tmp_path)
    text = skir(
        f"""
        %p = tool.write "{path}" (%task) : path
        ctl.return (%task)
        """
    )
    with pytest.raises(OpFailure, match="sandbox: path .* resolves outside the work directory"):
        run(text, tmp_path)
    assert not (tmp_path / "escape.txt").exists()
    assert not Path("/tmp/skvm-escape-test.txt").exists()


def test_secret_env_is_scrubbed_unless_required_and_allowed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SKVM_TEST_API_KEY", "s3cret-value")
    body = """
        %a = tool.exec ["sh", "-c", "echo \\"[$SKVM_TEST_API_KEY]\\""] : text
        ctl.return (%a)
        """
    assert run(skir(body), tmp_path)[0] == ("[]\n",)
    # Allowed by the user but not required by the skill: still scrubbed, with a warning.
    values, interp = run(skir(body), tmp_path, allow_env=("SKVM_TEST_API_KEY",))
    assert values == ("[]\n",) and "ignored" in interp.warnings[0].message
    required = skir(body, extra='env.require env "SKVM_TEST_API_KEY"\n')
    assert run(required, tmp_path)[0] == ("[]\n",)
    assert run(required, tmp_path, allow_env=("SKVM_TEST_API_KEY",))[0] == ("[s3cret-value]\n",)


def test_allowed_tools_are_enforced(tmp_path: Path) -> None:
    meta = 'allowed_tools = ["Bash(echo:*)", "Read"]'
    ok = skir('%a = tool.exec ["echo", "hi"] : text\nctl.return (%a)\n', meta=meta)
    assert run(ok, tmp_path)[0] == ("hi\n",)
    for body, what in [
        ('%a = tool.exec ["ls"] : text\nctl.return (%a)\n', "Bash(ls)"),
        ('%a = tool.exec ["echo hi | tee x"] {shell} : text\nctl.return (%a)\n', "Bash('echo hi | tee x')"),
        ('%p = tool.write "x.txt" (%task) : path\nctl.return (%task)\n', "Write(x.txt)"),
    ]:
        with pytest.raises(OpFailure, match=r"not in the skill's allowed-tools") as info:
            run(skir(body, meta=meta), tmp_path)
        assert what in info.value.reason
    assert not (tmp_path / "work" / "x").exists()


def test_fetch_needs_network_permission(tmp_path: Path) -> None:
    text = skir('%a = tool.fetch "http://127.0.0.1:9/" : text\nctl.return (%a)\n')
    with pytest.raises(OpFailure, match="network access .* is not allowed"):
        run(text, tmp_path)


def test_command_timeout(tmp_path: Path) -> None:
    text = skir('%a = tool.exec ["sleep", "5"] : text\nctl.return (%a)\n')
    start = time.perf_counter()
    with pytest.raises(OpFailure, match="stopped by the sandbox: wall-clock timeout"):
        run(text, tmp_path, command_timeout_s=0.3)
    assert time.perf_counter() - start < 3


# ------------------------------------------------------------------ the deterministic example


def _tree(root: Path) -> dict[str, bytes]:
    skip = {".skvm", ".tmp"}
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not (set(p.relative_to(root).parts) & skip)
    }


def test_deterministic_example_matches_bash(tmp_path: Path) -> None:
    from skvm.frontend.importer import import_skill

    module = import_skill(WORD_STATS)
    vm_dir = tmp_path / "vm"
    Interpreter(module, RunOptions(workdir=vm_dir, skill_root=WORD_STATS)).run("main", {})
    bash_dir = tmp_path / "bash"
    bash_dir.mkdir()
    script = (
        f"test -f notes.txt || cp {WORD_STATS}/assets/notes.txt notes.txt\n"
        "mkdir -p out\n"
        "wc -l -w -m notes.txt > out/counts.txt\n"
        f"python3 {WORD_STATS}/scripts/word_stats.py notes.txt report.md\n"
    )
    subprocess.run(["bash", "-e", "-c", script], cwd=bash_dir, check=True, capture_output=True)
    vm_tree, bash_tree = _tree(vm_dir), _tree(bash_dir)
    assert sorted(vm_tree) == ["notes.txt", "out/counts.txt", "report.md"]
    assert vm_tree == bash_tree


def test_staging_does_not_write_through_links_left_in_the_work_directory(tmp_path: Path) -> None:
    from skvm.frontend.importer import import_skill

    module = import_skill(WORD_STATS)
    host = tmp_path / "host"
    host.mkdir()
    (host / "word_stats.py").write_text("host file\n")
    work = tmp_path / "vm"
    scripts = work / ".skvm" / "skill" / "scripts"
    scripts.mkdir(parents=True)
    # A link in the file's place is replaced by the bundled script...
    (scripts / "word_stats.py").symlink_to(host / "word_stats.py")
    Interpreter(module, RunOptions(workdir=work, skill_root=WORD_STATS)).run("main", {})
    assert (host / "word_stats.py").read_text() == "host file\n"
    assert not (scripts / "word_stats.py").is_symlink()
    assert (work / "report.md").exists()
    # ...and a linked directory that leads out is refused before anything is copied.
    shutil.rmtree(scripts)
    scripts.symlink_to(host)
    with pytest.raises(SkvmError, match="resolves outside the work directory"):
        Interpreter(module, RunOptions(workdir=work, skill_root=WORD_STATS)).run("main", {})
    assert (host / "word_stats.py").read_text() == "host file\n"
    assert sorted(p.name for p in host.iterdir()) == ["word_stats.py"]


def test_the_trace_store_is_not_opened_through_a_link_out(tmp_path: Path) -> None:
    module = parse_module(
        'skill @s {\n  proc @main() -> text {\n    %a = tool.exec ["echo", "hi"] : text\n'
        "    ctl.return (%a)\n  }\n}\n",
        "s.skir",
    )
    host = tmp_path / "host"
    host.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / ".skvm").symlink_to(host)  # left by a command of an earlier run
    with pytest.raises(SkvmError, match="resolves outside the work directory"):
        Interpreter(module, RunOptions(workdir=work)).run("main", {})
    assert list(host.iterdir()) == []


def test_deterministic_skill_loads_no_model(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from skvm.cli.run import RunDriver\n"
        f"rc = RunDriver([{str(WORD_STATS)!r}, '--compile', '--workdir', {str(tmp_path)!r}]).run()\n"
        "print(rc, sorted(m for m in ('litellm', 'llama_cpp', 'openai') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 []"


def test_plan_of_the_example() -> None:
    from skvm.frontend.importer import import_skill

    plan = build_plan(import_skill(WORD_STATS))
    assert plan.splitlines()[0] == "plan for @main(%task: text) of skill @word_stats"
    assert "code     %s4 = tool.script @word_stats_py notes.txt report.md  [SKILL.md:33:1]" in plan
    assert plan.rstrip().endswith("no model is needed")
