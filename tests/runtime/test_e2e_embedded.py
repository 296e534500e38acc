"""End to end on the embedded model (SmolLM2-135M through llama.cpp): import, compile, run.

Marked ``embedded``; skipped with the reason when llama-cpp-python or the model wheel is
not installed. Kept to a few short model calls (well under a minute on 2 cores).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from skvm.cli.run import RunDriver
from skvm.runtime.local_model import embedded_available
from skvm.runtime.traces import TraceStore

REPO = Path(__file__).resolve().parents[2]
AVAILABLE, WHY = embedded_available()

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.skipif(not AVAILABLE, reason=f"embedded model unavailable: {WHY}"),
]

JUDGE = """
skill @tiny {
  meta {description = "Decide whether a note mentions a date.", name = "tiny"}
  proc @main(%task: text) -> text {
    %ok = llm.judge "Does the text mention a day of the week?" (%task) : bool loc("SKILL.md":5:1)
    %r = ctl.if (%ok) {
      %y = tool.exec ["echo", "dated"] : text
      ctl.yield (%y)
    } else {
      %n = tool.exec ["echo", "undated"] : text
      ctl.yield (%n)
    } : text
    ctl.return (%r)
  }
}
"""


def test_model_example_runs_on_the_embedded_model(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    args = [str(REPO / "examples" / "summarize-notes"), "--compile", "--workdir", str(tmp_path),
            "--max-steps", "1", "--timeout", "120"]
    assert RunDriver(args, stdout=out, stderr=err).run() == 0, err.getvalue()
    assert out.getvalue().strip(), "the step produced no text"
    store = TraceStore(tmp_path / ".skvm" / "traces.sqlite")
    (run,) = store.runs()
    step = [op for op in store.ops(run["run_id"]) if op["op_name"] == "llm.step"][0]
    store.close()
    assert step["outcome"] == "ok" and step["tokens_out"] > 0
    # One forced finish turn: the act protocol ended with a typed result.
    assert [c["name"] for c in step["tool_calls"]] == ["finish"]


def test_judge_gives_a_bool_on_the_embedded_model(tmp_path: Path) -> None:
    skir = tmp_path / "tiny.skir"
    skir.write_text(JUDGE)
    out, err = io.StringIO(), io.StringIO()
    args = [str(skir), "--workdir", str(tmp_path / "w"), "--task", "We ship on Friday."]
    assert RunDriver(args, stdout=out, stderr=err).run() == 0, err.getvalue()
    assert out.getvalue() in ("dated\n", "undated\n")
