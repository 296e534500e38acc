"""Tests for model ops through the VM: the agent loop (tools and act protocols), llm.gen /
llm.judge with constrained answers, retries, budgets, context selection and the sandbox
seen by the model. Every model is the scripted fake (no network)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from skvm.ir.parser import parse_module
from skvm.runtime.interpreter import Interpreter, OpFailure, RunOptions
from skvm.runtime.models import FAKE_MODEL, ModelClient, ScriptedError, ScriptedModel, ToolCall
from skvm.runtime.traces import TraceStore

STEP = """
skill @t {
  meta {description = "Test skill.", name = "t"}
  ctx.text "Intro" "General words." {level = 1}
  ctx.rule never "Never delete files."
  ctx.text "Workflow" "Workflow prose only this step sees." {level = 2}
  ctx.text "Other" "Prose of another section." {level = 2}
  proc @main(%task: text) -> RESULT {section = "Workflow"} {
    %r = llm.step "Do the thing" (%task) : RESULT loc("SKILL.md":9:1)
    ctl.return (%r)
  }
}
"""


def client() -> ModelClient:
    return ModelClient(FAKE_MODEL, backoff_s=0.001)


def run(text: str, tmp_path: Path, script, *, result: str = "text", **options):
    module = parse_module(text.replace("RESULT", result), "t.skir")
    with ScriptedModel(script) as fake:
        interp = Interpreter(module, RunOptions(workdir=tmp_path / "work", **options), client=client())
        try:
            values = interp.run("main", {"task": "the task"}).values
        finally:
            fake.requests_seen = list(fake.requests)
    return values, interp, fake


def ops(tmp_path: Path) -> list[dict]:
    store = TraceStore(tmp_path / "work" / ".skvm" / "traces.sqlite")
    try:
        return store.ops(store.runs()[-1]["run_id"])
    finally:
        store.close()


# ------------------------------------------------------------------ llm.step, tools protocol


def test_step_uses_tools_then_finishes(tmp_path: Path) -> None:
    script = [
        ToolCall("write_file", {"path": "notes/a.txt", "content": "hello"}, "c1"),
        ToolCall("run_command", {"command": "cat notes/a.txt | wc -c"}, "c2"),
        ToolCall("finish", {"result": "wrote it"}, "c3"),
    ]
    values, interp, fake = run(STEP, tmp_path, script)
    assert values == ("wrote it",)
    assert (tmp_path / "work" / "notes" / "a.txt").read_text() == "hello"
    # The command's output came back to the model as the tool result.
    third = fake.requests[2][0]
    assert third[-1]["role"] == "tool" and third[-1]["content"].startswith("exit 0\n5")
    # Tools protocol: all five tools offered, choice auto.
    params = fake.requests[0][1]
    assert [t["function"]["name"] for t in params["tools"]] == [
        "read_file", "write_file", "list_dir", "run_command", "finish",
    ]
    assert params["tool_choice"] == "auto"
    record = ops(tmp_path)[0]
    assert record["op_name"] == "llm.step" and record["outcome"] == "ok"
    assert [c["name"] for c in record["tool_calls"]] == ["write_file", "run_command", "finish"]
    assert record["tokens_in"] > 0 and record["messages"][0]["role"] == "system"


def test_step_context_is_selected(tmp_path: Path) -> None:
    _, _, fake = run(STEP, tmp_path, [ToolCall("finish", {"result": "x"})])
    system = fake.requests[0][0][0]["content"]
    user = fake.requests[0][0][1]["content"]
    assert "Workflow prose only this step sees." in system
    assert "[never] Never delete files." in system
    assert "Prose of another section." not in system and "General words." not in system
    assert "Step: Do the thing" in user and "%task:\nthe task" in user


def test_step_text_answer_without_tools_is_the_result(tmp_path: Path) -> None:
    values, _, _ = run(STEP, tmp_path, ["just the answer"])
    assert values == ("just the answer",)


def test_step_typed_result_is_checked_and_retried(tmp_path: Path) -> None:
    schema = 'json<"{\\"type\\": \\"object\\", \\"required\\": [\\"n\\"]}">'
    script = [ToolCall("finish", {"result": {"m": 1}}), ToolCall("finish", {"result": {"n": 2}})]
    values, _, fake = run(STEP, tmp_path, script, result=schema)
    assert values == ({"n": 2},)
    assert "does not match its schema" in fake.requests[1][0][-1]["content"]
    finish = fake.requests[0][1]["tools"][-1]["function"]["parameters"]
    assert finish["properties"]["result"]["required"] == ["n"]


# ------------------------------------------------------------------ act protocol


def test_act_protocol_forces_one_tool(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "in.txt").write_text("42\n")
    script = [
        ToolCall("act", {"action": "read_file", "path": "in.txt"}),
        ToolCall("act", {"action": "finish", "result": 42}),
    ]
    values, _, fake = run(STEP, tmp_path, script, result="int", protocol="act")
    assert values == (42,)
    params = fake.requests[0][1]
    assert params["tool_choice"] == {"type": "function", "function": {"name": "act"}}
    variants = params["tools"][0]["function"]["parameters"]["anyOf"]
    assert [v["properties"]["action"]["const"] for v in variants] == [
        "read_file", "write_file", "list_dir", "run_command", "finish",
    ]
    assert fake.requests[1][0][-1]["content"] == "42\n"


def test_last_turn_forces_finish_and_turn_budget(tmp_path: Path) -> None:
    script = [ToolCall("list_dir", {"path": "."})] * 2 + [ToolCall("finish", {"result": "done"})]
    values, _, fake = run(STEP, tmp_path, script, max_steps=3)
    assert values == ("done",)
    assert fake.requests[2][1]["tool_choice"] == {"type": "function", "function": {"name": "finish"}}
    with pytest.raises(OpFailure, match="turn budget exhausted \\(2 turns\\)") as info:
        run(STEP, tmp_path, [ToolCall("list_dir", {"path": "."})] * 2, max_steps=2)
    assert str(info.value.diagnostics[0].loc) == "SKILL.md:9:1"
    failed = ops(tmp_path)[0]
    assert failed["outcome"] == "failed" and len(failed["tool_calls"]) == 2


def test_token_budget(tmp_path: Path) -> None:
    with pytest.raises(OpFailure, match="token budget exhausted"):
        run(STEP, tmp_path, [ToolCall("list_dir", {"path": "."})] * 5, budget_tokens=10)


def test_provider_errors_are_retried(tmp_path: Path) -> None:
    script = [ScriptedError("RateLimitError"), ScriptedError("InternalServerError"),
              ToolCall("finish", {"result": "after retries"})]
    values, interp, _ = run(STEP, tmp_path, script)
    assert values == ("after retries",)
    assert interp.client.usage.retries == 2


def test_permanent_provider_error_fails_the_op(tmp_path: Path) -> None:
    with pytest.raises(OpFailure, match="llm.step failed: model call .* BadRequestError"):
        run(STEP, tmp_path, [ScriptedError("BadRequestError", "bad")])


# ------------------------------------------------------------------ sandbox seen by the model


def test_model_tool_calls_go_through_the_sandbox(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SKVM_AGENT_SECRET_TOKEN", "hunter2")
    script = [
        ToolCall("write_file", {"path": "../escaped.txt", "content": "x"}),
        ToolCall("read_file", {"path": "/etc/hostname"}),
        ToolCall("run_command", {"command": "echo [$SKVM_AGENT_SECRET_TOKEN]"}),
        ToolCall("finish", {"result": "ok"}),
    ]
    values, interp, fake = run(STEP, tmp_path, script)
    assert values == ("ok",)
    assert not (tmp_path / "escaped.txt").exists()
    observations = [m["content"] for m in fake.requests[3][0] if m["role"] == "tool"]
    assert observations[0].startswith("refused by the sandbox: path '../escaped.txt'")
    assert observations[1].startswith("refused by the sandbox: path '/etc/hostname'")
    assert observations[2] == "exit 0\n[]\n"
    assert len([w for w in interp.warnings if "refused" in w.message]) == 2
    calls = ops(tmp_path)[0]["tool_calls"]
    assert "violation" in calls[0] and "violation" in calls[1]


def test_model_commands_obey_allowed_tools(tmp_path: Path) -> None:
    text = STEP.replace('name = "t"', 'allowed_tools = ["Read"], name = "t"')
    script = [ToolCall("run_command", {"command": "touch pwned"}), ToolCall("finish", {"result": "ok"})]
    _, _, fake = run(text, tmp_path, script)
    assert "not in the skill's allowed-tools" in fake.requests[1][0][-1]["content"]
    assert not (tmp_path / "work" / "pwned").exists()


# ------------------------------------------------------------------ llm.gen / llm.judge

GEN = """
skill @t {
  proc @main(%task: text) -> text {
    %ok = llm.judge "Is it big?" (%task) : bool
    %r = ctl.if (%ok) {
      %g = llm.gen "Summarize" (%task) : json<"{\\"type\\": \\"object\\", \\"required\\": [\\"n\\"]}">
      %t = tool.exec ["echo", %g] : text
      ctl.yield (%t)
    } else {
      ctl.yield (%task)
    } : text
    ctl.return (%r)
  }
}
"""


def test_judge_and_gen_use_constrained_answers(tmp_path: Path) -> None:
    script = ['{"answer": true}', '{"answer": {"n": 3}}']
    values, interp, fake = run(GEN, tmp_path, script)
    assert values == ('{"n": 3}\n',)
    judge_format = fake.requests[0][1]["response_format"]
    assert judge_format["type"] == "json_object"
    assert judge_format["schema"]["properties"]["answer"] == {"type": "boolean"}
    gen_format = fake.requests[1][1]["response_format"]
    assert gen_format["schema"]["properties"]["answer"]["required"] == ["n"]
    assert "tools" not in fake.requests[0][1]
    assert interp.tokens_in > 0


def test_judge_false_and_bad_gen_answer(tmp_path: Path) -> None:
    values, _, _ = run(GEN, tmp_path, ['{"answer": false}'])
    assert values == ("the task",)
    with pytest.raises(OpFailure, match="llm.gen failed: the model's answer does not match its schema"):
        run(GEN, tmp_path, ['{"answer": "yes"}', '{"answer": {"m": 1}}'])


def test_parallel_model_steps_join_in_order(tmp_path: Path) -> None:
    branches = "".join(
        f' {{\n  %s{i} = llm.step "step {i}" (%task) : text\n  ctl.yield (%s{i})\n}}' for i in range(4)
    )
    text = textwrap.dedent(
        f"""
        skill @t {{
          proc @main(%task: text) -> text {{
            %a, %b, %c, %d = ctl.parallel {{kind = tlp}}{branches} : text, text, text, text
            %j = tool.exec ["echo", %a, %b, %c, %d] : text
            ctl.return (%j)
          }}
        }}
        """
    )

    def answer(messages, params):
        step = messages[1]["content"].split("\n")[0].removeprefix("Step: ")
        return ToolCall("finish", {"result": step.replace(" ", "")})

    values, _, _ = run(text, tmp_path, answer)
    assert values == ("step0 step1 step2 step3\n",)
