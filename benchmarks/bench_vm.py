"""VM benchmarks (one command: ``.venv/bin/python benchmarks/bench_vm.py``).

1. Overhead: a deterministic skill of 50 commands run by the VM (sandbox and traces on)
   against the same 50 commands run by one bash process (target <= 1.3x).
2. Parallel speedup: k = 2, 4, 8 independent model steps compiled with ``parallelize``,
   against a loopback OpenAI-compatible server answering after a fixed delay; wall time
   over the critical path (one delay) (target <= 1.2x).
3. Embedded model: wall time and tokens per llm.step on the example skills
   (skipped when the embedded model is not installed, or with --skip-embedded).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from skvm.ir.parser import parse_module
from skvm.runtime.interpreter import Interpreter, RunOptions

COMMANDS = 50
DELAY_S = 0.5


def _module(body: str):
    return parse_module("skill @b {\n  proc @main(%task: text) -> text {\n" + body
                        + "    ctl.return (%task)\n  }\n}\n", "bench.skir")


def bench_overhead(repeats: int) -> dict:
    """VM vs bash on 50 external commands."""
    body = "".join(f'    %c{i} = tool.exec ["/bin/echo", "line {i}"] : text\n' for i in range(COMMANDS))
    module = _module(body)
    script = "".join(f"/bin/echo 'line {i}' > /dev/null\n" for i in range(COMMANDS))
    vm, bash = [], []
    with tempfile.TemporaryDirectory() as tmp:
        Interpreter(module, RunOptions(workdir=tmp)).run("main", {})  # warm-up (spawner, cgroup)
        for _ in range(repeats):
            start = time.perf_counter()
            Interpreter(module, RunOptions(workdir=tmp)).run("main", {})
            vm.append(time.perf_counter() - start)
            start = time.perf_counter()
            subprocess.run(["bash", "-c", script], cwd=tmp, check=True)
            bash.append(time.perf_counter() - start)
    vm_s, bash_s = statistics.median(vm), statistics.median(bash)
    return {"vm_s": vm_s, "bash_s": bash_s, "ratio": vm_s / bash_s,
            "vm_ms_per_command": 1000 * vm_s / COMMANDS, "bash_ms_per_command": 1000 * bash_s / COMMANDS}


def bench_parallel(ks=(2, 4, 8)) -> list[dict]:
    """k independent model steps, parallelized, against a fixed-delay server."""
    from skvm.passes.manager import PassManager
    from skvm.passes.pipeline import parse_pipeline
    from skvm.runtime.fake_server import FakeOpenAIServer
    from skvm.runtime.models import ModelClient, ToolCall

    rows = []
    with FakeOpenAIServer(delay_s=DELAY_S, reply=ToolCall("finish", {"result": "done"})) as server:
        client = ModelClient(server.model, api_base=server.api_base, api_key="sk-bench-not-a-key")
        # Warm-up: litellm import and the first HTTP connection are not the VM's cost.
        client.complete([{"role": "user", "content": "hi"}])
        # The first round warms up the handlers, jsonschema and the thread pool.
        for index, k in enumerate((2, *ks)):
            body = "".join(f'    %s{i} = llm.step "step {i}" (%task) {{tools = []}} : text\n' for i in range(k))
            module = PassManager(parse_pipeline("parallelize{max-width=8}")).run(_module(body))
            groups = sum(1 for op in module.walk() if op.name == "ctl.parallel")
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                Interpreter(module, RunOptions(workdir=tmp), client=client).run("main", {})
                wall = time.perf_counter() - start
            if index == 0:
                continue  # warm-up round, not reported
            rows.append({"k": k, "parallel_groups": groups, "wall_s": wall,
                         "critical_path_s": DELAY_S, "ratio": wall / DELAY_S, "speedup": k * DELAY_S / wall})
        rows.append({"max_concurrent_requests": server.stats()["max_concurrent"]})
    return rows


def bench_embedded() -> list[dict]:
    """Wall time and tokens per llm.step of the examples on the embedded model."""
    from skvm.cli.run import RunDriver
    from skvm.runtime.local_model import embedded_available
    from skvm.runtime.traces import TraceStore

    ok, why = embedded_available()
    if not ok:
        return [{"skipped": why}]
    examples = [
        ("summarize-notes", [str(REPO / "examples" / "summarize-notes")]),
        ("release-brief", [str(REPO / "examples" / "release-brief" / "release-brief.skir")]),
    ]
    rows = []
    for name, args in examples:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            import io

            code = RunDriver(args + ["--compile", "--workdir", tmp], stdout=io.StringIO(),
                             stderr=io.StringIO()).run()
            wall = time.perf_counter() - start
            store = TraceStore(Path(tmp) / ".skvm" / "traces.sqlite")
            run = store.runs()[-1]
            steps = [o for o in store.ops(run["run_id"]) if o["op_name"].startswith("llm.")]
            store.close()
        rows.append({
            "example": name, "exit": code, "wall_s": wall, "model_ops": len(steps),
            "s_per_step": statistics.mean(o["latency_s"] for o in steps) if steps else 0,
            "tokens_in_per_step": statistics.mean(o["tokens_in"] for o in steps) if steps else 0,
            "tokens_out_per_step": statistics.mean(o["tokens_out"] for o in steps) if steps else 0,
            "turns_per_step": statistics.mean(len(o["tool_calls"] or ()) for o in steps) if steps else 0,
        })
    return rows


def main() -> None:
    """Run the benchmarks and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-embedded", action="store_true")
    opts = parser.parse_args()
    o = bench_overhead(opts.repeats)
    print(f"[overhead] {COMMANDS} commands: VM {o['vm_s']:.3f}s ({o['vm_ms_per_command']:.2f} ms/cmd), "
          f"bash {o['bash_s']:.3f}s ({o['bash_ms_per_command']:.2f} ms/cmd), ratio {o['ratio']:.2f}x (target <= 1.3x)")
    for row in bench_parallel():
        if "k" in row:
            print(f"[parallel] k={row['k']}: wall {row['wall_s']:.3f}s, critical path {row['critical_path_s']:.2f}s, "
                  f"ratio {row['ratio']:.2f}x (target <= 1.2x), speedup {row['speedup']:.2f}x, "
                  f"groups {row['parallel_groups']}")
        else:
            print(f"[parallel] server saw at most {row['max_concurrent_requests']} concurrent requests")
    if not opts.skip_embedded:
        for row in bench_embedded():
            if "skipped" in row:
                print(f"[embedded] skipped: {row['skipped']}")
                continue
            print(f"[embedded] {row['example']}: exit {row['exit']}, wall {row['wall_s']:.1f}s, "
                  f"{row['model_ops']} model op(s), {row['s_per_step']:.1f} s/step, "
                  f"{row['tokens_in_per_step']:.0f} tokens in + {row['tokens_out_per_step']:.0f} out per step, "
                  f"{row['turns_per_step']:.1f} tool calls/step")


if __name__ == "__main__":
    main()
