"""Tests for the skvm-run driver: results, --trace, --dry-run, failures as diagnostics."""

from __future__ import annotations

import io
from pathlib import Path

from skvm.cli.run import RunDriver
from skvm.runtime.models import FAKE_MODEL, ModelClient, ScriptedModel, ToolCall

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def drive(args, **kwargs) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = RunDriver([str(a) for a in args], stdout=out, stderr=err, **kwargs).run()
    return code, out.getvalue(), err.getvalue()


def test_runs_the_deterministic_example(tmp_path: Path) -> None:
    code, out, err = drive([EXAMPLES / "word-stats", "--compile", "--workdir", tmp_path, "--trace",
                            "--task", "count the words in notes.txt"])
    assert code == 0, err
    assert out == "41 words in notes.txt; report written to report.md\n"
    trace = [line for line in err.splitlines() if line.startswith("ok")]
    assert len(trace) == 4 and "tool.script" in trace[-1] and "SKILL.md:33:1" in trace[-1]
    assert "skvm-run: ok: 4 op(s), 0 token(s)" in err
    assert (tmp_path / "report.md").read_text().startswith("# Word report for notes.txt")


def test_dry_run_runs_nothing(tmp_path: Path) -> None:
    code, out, _ = drive([EXAMPLES / "word-stats", "--dry-run", "--workdir", tmp_path])
    assert code == 0
    assert "4 code op(s), 0 model op(s)" in out
    assert not any(tmp_path.iterdir())


def test_dry_run_shows_parallel_model_steps() -> None:
    code, out, _ = drive([EXAMPLES / "release-brief" / "release-brief.skir", "--compile", "--dry-run"])
    assert code == 0
    assert "parallel %b1, %b2, %b3 = ctl.parallel 3 branches" in out and out.count("model    %") == 3


def test_failure_is_a_located_diagnostic(tmp_path: Path) -> None:
    skir = tmp_path / "f.skir"
    skir.write_text(
        'skill @f {\n  proc @main(%task: text) -> text {\n'
        '    %a = tool.exec ["sh", "-c", "echo nope >&2; exit 2"] : text\n'
        "    ctl.return (%a)\n  }\n}\n"
    )
    code, out, err = drive([skir, "--workdir", tmp_path])
    assert code == 1 and out == ""
    assert "f.skir:3:10: error: tool.exec failed: `sh -c 'echo nope >&2; exit 2'` exited with status 2: nope" in err
    assert "Traceback" not in err and "skvm-run: failed: 1 op(s)" in err


def test_usage_and_input_errors(tmp_path: Path) -> None:
    code, _, err = drive([])
    assert code == 1 and "skvm-run: error:" in err
    code, _, err = drive([EXAMPLES / "word-stats", "--input", "novalue", "--workdir", tmp_path])
    assert code == 1 and "--input expects K=V" in err
    code, _, err = drive([EXAMPLES / "word-stats", "--input", "x=1", "--workdir", tmp_path])
    assert code == 1 and "@main has no parameter %x" in err
    code, _, err = drive([tmp_path / "missing.skir"])
    assert code == 1 and "no such file" in err


def test_bad_numbers_and_work_directories_are_usage_errors(tmp_path: Path) -> None:
    skill = EXAMPLES / "word-stats"
    for flag, value, message in [
        ("--max-steps", "-3", "argument --max-steps: must be 1 or more, got -3"),
        ("--budget-tokens", "0", "argument --budget-tokens: must be 1 or more, got 0"),
        ("--max-width", "x", "argument --max-width: expected an integer, got 'x'"),
        ("--model-workers", "-1", "argument --model-workers: must be 0 or more, got -1"),
        ("--timeout", "nan", "argument --timeout: must be a positive number of seconds, got 'nan'"),
        ("--command-timeout", "-5", "argument --command-timeout: must be a positive number of seconds"),
    ]:
        code, _, err = drive([skill, flag, value, "--workdir", tmp_path / "w"])
        assert code == 1 and f"skvm-run: error: {message}" in err, (flag, err)
    assert not (tmp_path / "w").exists()
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me\n")
    code, _, err = drive([skill, "--workdir", a_file])
    assert code == 1 and f"error: work directory '{a_file}' is not a directory" in err
    assert "Traceback" not in err and a_file.read_text() == "keep me\n"
    code, _, err = drive([skill, "--workdir", a_file / "sub"])
    assert code == 1 and f"error: cannot use work directory '{a_file / 'sub'}': Not a directory" in err


def test_model_example_with_scripted_model(tmp_path: Path) -> None:
    script = [ToolCall("finish", {"result": "Version 2.4 ships on Friday after the login fix."})]
    with ScriptedModel(script) as fake:
        code, out, err = drive(
            [EXAMPLES / "summarize-notes", "--compile", "--workdir", tmp_path, "--trace"],
            client=ModelClient(FAKE_MODEL),
        )
    assert code == 0, err
    assert out == "Version 2.4 ships on Friday after the login fix.\n"
    # The notes (the cat step's output) reached the model step as its input.
    assert "We decided to ship version 2.4 on Friday." in fake.requests[0][0][1]["content"]
    assert "llm.step" in err and "skvm-run: ok: 3 op(s)" in err


PARALLEL_STEPS = """skill @p {
  proc @main(%task: text) -> text {
    %a = llm.step "first" (%task) {tools = []} : text
    %b = llm.step "second" (%task) {tools = []} : text
    %c = llm.step "third" (%task) {tools = []} : text
    ctl.return (%task)
  }
}
"""


def test_model_workers_flag(tmp_path: Path, monkeypatch, model_pool) -> None:
    from skvm.runtime.fake_server import FakeOpenAIServer

    skir = tmp_path / "p.skir"
    skir.write_text(PARALLEL_STEPS)
    pool = model_pool
    with FakeOpenAIServer(delay_s=0.3, reply=ToolCall("finish", {"result": "done"})) as server:
        # litellm takes the base URL and key from the environment, in the workers too.
        monkeypatch.setenv("OPENAI_API_BASE", server.api_base)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")
        served = []
        for workers in ("2", "0"):
            before = sum(pool.stats()["calls"])
            code, out, err = drive([skir, "--compile", "--model", server.model, "--workdir",
                                    tmp_path / workers, "--model-workers", workers])
            assert code == 0, err
            assert "skvm-run: ok" in err
            served.append(sum(pool.stats()["calls"]) - before)
        assert server.stats()["requests"] == 6 and server.stats()["max_concurrent"] == 3
    assert served[0] >= 1 and served[1] == 0  # the first call of a burst stays in the VM
