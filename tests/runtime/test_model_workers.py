"""Model calls answered by worker processes (skvm.runtime.model_workers).

The pools here import litellm in a zygote process (seconds), so most tests
share one module-scoped pool; the tests that kill or close workers start
their own one-worker pool.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from skvm.ir.parser import parse_module
from skvm.passes.manager import PassManager
from skvm.passes.pipeline import parse_pipeline
from skvm.runtime import model_workers
from skvm.runtime.fake_server import FakeOpenAIServer
from skvm.runtime.interpreter import Interpreter, RunOptions
from skvm.runtime.model_workers import ModelWorkers, RemoteCallError, configured_workers
from skvm.runtime.models import RETRYABLE_ERRORS, ModelClient, ModelError, ScriptedModel, ToolCall

REPO = Path(__file__).resolve().parents[2]
USER = [{"role": "user", "content": "hi"}]
FINISH = ToolCall("finish", {"result": "done"})
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "finish",
            "description": "finish",
            "parameters": {"type": "object", "properties": {"result": {"type": "string"}}},
        },
    }
]


def _gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer(delay_s=0.3, reply=FINISH) as srv:
        yield srv


@pytest.fixture
def shared_pool(model_pool):
    """The process's shared pool (tests/conftest.py starts it once per session)."""
    return model_pool


def _concurrently(client: ModelClient, n: int, **kwargs):
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: client.complete(USER, **kwargs), range(n)))


# ------------------------------------------------------------------ configuration


def test_configured_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SKVM_MODEL_WORKERS", raising=False)
    assert configured_workers() == model_workers.default_workers()
    assert configured_workers(3) == 3
    assert configured_workers(-2) == 0
    monkeypatch.setenv("SKVM_MODEL_WORKERS", "0")
    assert configured_workers() == 0
    assert configured_workers(2) == 2  # the run's own setting wins
    monkeypatch.setenv("SKVM_MODEL_WORKERS", "many")
    assert configured_workers() == model_workers.default_workers()


@pytest.mark.parametrize(("cores", "expected"), [(1, 0), (2, 0), (3, 0), (4, 4), (16, 4)])
def test_default_workers_need_spare_cores(monkeypatch: pytest.MonkeyPatch, cores: int, expected: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert model_workers.default_workers() == expected


# ------------------------------------------------------------------- the pool


def test_worker_answers_like_the_client(server, shared_pool) -> None:
    client = ModelClient(server.model, api_base=server.api_base, api_key="x", workers=0)
    request = client._request(USER, TOOLS, "required", None, None, 0, {})
    future = shared_pool.submit(request)
    assert future is not None
    remote, cost = future.result(timeout=30)
    local = client.complete(USER, tools=TOOLS, tool_choice="required")
    assert remote.tool_calls == local.tool_calls == (ToolCall("finish", {"result": "done"}, "call_0"),)
    assert (remote.tokens_in, remote.tokens_out) == (local.tokens_in, local.tokens_out)
    assert remote.finish_reason == local.finish_reason == "tool_calls"
    assert cost == local.cost_usd  # litellm has no price for the fake model: None both ways


def test_concurrent_calls_go_to_workers(server, shared_pool) -> None:
    client = ModelClient(server.model, api_base=server.api_base, api_key="x", workers=2)
    before = sum(shared_pool.stats()["calls"])
    served = server.stats()["requests"]
    results = _concurrently(client, 6, tools=TOOLS, tool_choice="required")
    assert all(r.tool_calls[0].name == "finish" for r in results)
    assert server.stats()["requests"] == served + 6
    # The first call of a burst stays in this process; the others may leave it.
    assert 1 <= sum(shared_pool.stats()["calls"]) - before <= 5
    assert client.usage.calls == 6
    assert client.usage.tokens_in == sum(r.tokens_in for r in results)
    assert all(r.latency_s >= 0.3 and r.attempts == 1 for r in results)


def test_sequential_calls_stay_in_process(server, shared_pool) -> None:
    client = ModelClient(server.model, api_base=server.api_base, api_key="x", workers=2)
    before = sum(shared_pool.stats()["calls"])
    for _ in range(3):
        client.complete(USER)
    assert sum(shared_pool.stats()["calls"]) == before


def test_zero_workers_keep_every_call_in_process(server, shared_pool) -> None:
    client = ModelClient(server.model, api_base=server.api_base, api_key="x", workers=0)
    before = sum(shared_pool.stats()["calls"])
    _concurrently(client, 4)
    assert sum(shared_pool.stats()["calls"]) == before
    assert client.start_workers() is False


def test_in_process_providers_never_leave(shared_pool) -> None:
    before = sum(shared_pool.stats()["calls"])
    with ScriptedModel(lambda messages, params: "ok") as fake:
        client = ModelClient(fake.model, workers=2)
        assert client.start_workers() is False
        results = _concurrently(client, 4)
    assert [r.text for r in results] == ["ok"] * 4
    assert len(fake.requests) == 4
    assert sum(shared_pool.stats()["calls"]) == before


def test_worker_errors_keep_their_class_and_retry_policy(server, shared_pool) -> None:
    # A closed port: a connection error (litellm may call it a server error),
    # retried, then reported with its class name.
    with FakeOpenAIServer(delay_s=0) as gone:
        dead_base = gone.api_base
    client = ModelClient(server.model, api_base=dead_base, api_key="x", workers=2,
                         retries=1, backoff_s=0.01, timeout_s=5)
    request = client._request(USER, None, None, None, None, 0, {})
    with pytest.raises(RemoteCallError) as info:
        shared_pool.submit(request).result(timeout=60)
    kind = info.value.kind
    assert kind in RETRYABLE_ERRORS and info.value.retryable
    with pytest.raises(ModelError, match=f"after 2 attempt.*{kind}"):
        client._retry_delay(info.value, 1)
    # A wrong path: 404, not retried.
    client = ModelClient(server.model, api_base=server.api_base + "/nowhere", api_key="x",
                         workers=2, retries=3, backoff_s=0.01)
    request = client._request(USER, None, None, None, None, 0, {})
    with pytest.raises(RemoteCallError) as info:
        shared_pool.submit(request).result(timeout=60)
    assert info.value.kind == "NotFoundError" and not info.value.retryable
    errors = []

    def call() -> None:
        try:
            client.complete(USER)
        except ModelError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(errors) == 3
    assert all(e.attempts == 1 and "NotFoundError" in str(e.diagnostics[0].message) for e in errors)


def test_unpicklable_request_runs_in_process(server, shared_pool) -> None:
    lock = threading.Lock()  # cannot be pickled
    client = ModelClient(server.model, api_base=server.api_base, api_key="x")
    assert shared_pool.submit(client._request(USER, None, None, None, None, 0, {"metadata": {"l": lock}})) is None


def test_interpreter_starts_workers_for_parallel_model_steps(server, shared_pool, tmp_path) -> None:
    body = "".join(f'    %s{i} = llm.step "step {i}" (%task) {{tools = []}} : text\n' for i in range(4))
    module = parse_module(
        "skill @b {\n  proc @main(%task: text) -> text {\n" + body + "    ctl.return (%task)\n  }\n}\n",
        "parallel.skir",
    )
    module = PassManager(parse_pipeline("parallelize")).run(module)
    client = ModelClient(server.model, api_base=server.api_base, api_key="x", workers=2)
    before = sum(shared_pool.stats()["calls"])
    served = server.stats()["requests"]
    result = Interpreter(module, RunOptions(workdir=tmp_path), client=client).run("main", {"task": "t"})
    assert result.values == ("t",)
    assert server.stats()["requests"] == served + 4
    assert sum(shared_pool.stats()["calls"]) > before


# -------------------------------------------------------- failures and shutdown


def test_a_dead_worker_fails_its_calls_and_close_stops_the_rest(server) -> None:
    pool = ModelWorkers(2)
    try:
        assert pool.wait_ready(), pool.error
        first, second = pool.pids
        zygote = pool._zygote
        client = ModelClient(server.model, api_base=server.api_base, api_key="x")
        with FakeOpenAIServer(delay_s=30, reply=FINISH) as slow:
            request = client._request(USER, None, None, None, None, 0, {"api_base": slow.api_base})
            future = pool.submit(request)  # both idle: the first worker takes it
            time.sleep(0.5)  # the call is waiting on the slow server
            os.kill(first, signal.SIGKILL)
            with pytest.raises(RemoteCallError) as info:
                future.result(timeout=10)
            assert info.value.retryable and info.value.kind == "APIConnectionError"
            assert pool.stats()["workers"] == 1
            # The next call goes to the live worker.
            result, _ = pool.submit(client._request(USER, None, None, None, None, 0, {})).result(30)
            assert result.tool_calls[0].name == "finish"
            # Closing does not wait for a call still waiting on its provider.
            waiting = pool.submit(request)
            time.sleep(0.5)
            pool.close()
            with pytest.raises(RemoteCallError):
                waiting.result(timeout=1)
            assert _gone(second)  # well before the slow server answers
    finally:
        pool.close()
    assert zygote.poll() is not None
    assert pool.submit(request) is None  # no worker left: the client calls in-process


def test_close_while_starting_does_not_wait_for_the_import() -> None:
    pool = ModelWorkers(1).start()
    deadline = time.monotonic() + 10
    while pool._zygote is None and time.monotonic() < deadline:
        time.sleep(0.01)
    zygote = pool._zygote
    pool.close()
    # Killed, not waited for: its litellm import takes seconds.
    assert zygote.returncode == -signal.SIGKILL
    assert not pool.wait_ready(timeout=10) and pool.submit({"model": "openai/x"}) is None


SCRIPT = """
import os, sys, time
print("main module ran", flush=True)  # no __main__ guard: must run once only
from skvm.runtime.model_workers import ModelWorkers
pool = ModelWorkers(2)
assert pool.wait_ready(), pool.error
print(" ".join(map(str, pool.pids + [pool._zygote.pid])), flush=True)
time.sleep(60)
"""


def test_workers_end_with_a_killed_vm_and_never_rerun_main(tmp_path: Path) -> None:
    script = tmp_path / "vm.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "main module ran"
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 3
        proc.kill()
        proc.wait()
        assert all(_gone(pid) for pid in pids)
        assert proc.stdout.read() == ""  # nobody imported the script a second time
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_worker_sockets_are_not_inherited(shared_pool) -> None:
    # A child of the VM holding a copy would keep its worker alive after close().
    assert shared_pool._workers
    assert not any(os.get_inheritable(w.conn.fileno()) for w in shared_pool._workers)


def test_runs_with_concurrent_model_work_start_the_pool_early(server, tmp_path, monkeypatch) -> None:
    started = []
    monkeypatch.setattr(ModelClient, "start_workers", lambda self: started.append(self) or True)
    client = ModelClient(server.model, api_base=server.api_base, api_key="x", workers=2)
    steps = "".join(f'    %s{i} = llm.step "step {i}" (%task) {{tools = []}} : text\n' for i in range(2))
    text = "skill @b {\n  proc @main(%task: text) -> text {\n" + steps + "    ctl.return (%task)\n  }\n}\n"
    sequential = parse_module(text, "s.skir")
    parallel = PassManager(parse_pipeline("parallelize")).run(parse_module(text, "p.skir"))
    Interpreter(sequential, RunOptions(workdir=tmp_path), client=client).run("main", {"task": "t"})
    assert started == []  # two steps one after the other: no pool
    Interpreter(parallel, RunOptions(workdir=tmp_path), client=client).run("main", {"task": "t"})
    assert started == [client]  # started before the first step, not at its first concurrent call


def test_zygote_warm_up_stays_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # restored after the test, whatever _warm_up does
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    seen: dict = {}

    class Lite:
        def completion(self, **kwargs):
            seen.update(kwargs, proxy=os.environ.get("HTTPS_PROXY"))
            raise ConnectionRefusedError("refused")

    model_workers._warm_up(Lite())  # its failure is the point: nothing raises
    assert seen["api_base"].startswith("http://127.0.0.1:") and seen["proxy"] is None
    assert seen["max_retries"] == 0 and seen["num_retries"] == 0 and seen["tools"]


def test_the_zygote_starts_without_the_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # Any process of the same user can read /proc/<zygote>/environ: the keys
    # reach the workers with their first call instead.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-hunter2hunter2hunter2hunter2")
    monkeypatch.setenv("SKVM_PLAIN", "visible")
    started = []

    def popen(argv, **kwargs):
        started.append(kwargs["env"])
        raise OSError("not this time")

    monkeypatch.setattr(model_workers.subprocess, "Popen", popen)
    pool = ModelWorkers(1).start()
    assert pool.wait_ready() is False and "not this time" in pool.error
    [env] = started
    assert "OPENAI_API_KEY" not in env and env["SKVM_PLAIN"] == "visible" and "PYTHONPATH" in env
