"""Tests for the model layer: ModelClient over litellm, the scripted fake, the fake server,
the embedded model's request mapping and (marked ``embedded``) the embedded model itself."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest

from skvm.runtime import local_model
from skvm.runtime.fake_server import FakeOpenAIServer
from skvm.runtime.models import (
    DEFAULT_MODEL,
    FAKE_MODEL,
    ModelClient,
    ModelError,
    ScriptedError,
    ScriptedModel,
    ToolCall,
    register_provider,
    unregister_provider,
)

USER = [{"role": "user", "content": "say something nice"}]
ACT_TOOL = {
    "type": "function",
    "function": {
        "name": "act",
        "description": "Do one action.",
        "parameters": {
            "type": "object",
            "properties": {"action": {"type": "string", "enum": ["read", "write", "finish"]}},
            "required": ["action"],
        },
    },
}
FORCE_ACT = {"type": "function", "function": {"name": "act"}}


def client(**kwargs) -> ModelClient:
    return ModelClient(FAKE_MODEL, backoff_s=0.001, **kwargs)


# ------------------------------------------------------------------- scripted fake


def test_scripted_text_and_tool_call() -> None:
    script = ["hello there", ToolCall("act", {"action": "read"})]
    with ScriptedModel(script) as fake:
        c = client()
        first = c.complete(USER)
        second = c.complete(USER, tools=[ACT_TOOL], tool_choice=FORCE_ACT, max_tokens=50)
    assert first.text == "hello there"
    assert first.tool_calls == ()
    assert first.finish_reason == "stop"
    assert first.model == FAKE_MODEL
    assert (first.tokens_in, first.tokens_out) == (3, 2)
    assert second.tool_calls == (ToolCall("act", {"action": "read"}, "call_0"),)
    assert second.finish_reason == "tool_calls"
    # The provider saw exactly what the client was asked to send.
    params = fake.requests[1][1]
    assert params["tools"] == [ACT_TOOL]
    assert params["tool_choice"] == FORCE_ACT
    assert params["max_tokens"] == 50
    assert c.usage.calls == 2
    assert c.usage.tokens_in == 6


def test_scripted_async() -> None:
    with ScriptedModel(lambda messages, params: f"echo {len(messages)}"):
        c = client()

        async def main():
            return await asyncio.gather(*(c.acomplete(USER * n) for n in (1, 2, 3)))

        results = asyncio.run(main())
    assert [r.text for r in results] == ["echo 1", "echo 2", "echo 3"]
    assert c.usage.calls == 3


def test_callable_script_sees_response_format() -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    seen = {}

    def script(messages, params):
        seen.update(params)
        return json.dumps({"ok": True})

    with ScriptedModel(script):
        result = client().complete(USER, response_format={"type": "json_object", "schema": schema})
    assert json.loads(result.text) == {"ok": True}
    assert seen["response_format"] == {"type": "json_object", "schema": schema}


@pytest.mark.parametrize(
    "kind",
    [
        "RateLimitError",
        "APIConnectionError",
        "InternalServerError",
        "Timeout",
        "ServiceUnavailableError",
    ],
)
def test_retries_transient_errors(kind: str) -> None:
    with ScriptedModel([ScriptedError(kind), ScriptedError(kind), "finally"]):
        c = client(retries=3)
        result = c.complete(USER)
    assert result.text == "finally"
    assert result.attempts == 3
    assert c.usage.retries == 2


def test_backoff_is_exponential() -> None:
    with ScriptedModel([ScriptedError(), ScriptedError(), "ok"]):
        c = ModelClient(FAKE_MODEL, backoff_s=0.05, backoff_max_s=1)
        start = time.perf_counter()
        c.complete(USER)
    # 0.05 + 0.10 seconds of backoff at least.
    assert time.perf_counter() - start >= 0.15
    assert [c._delay(n) for n in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1]


def test_retries_exhausted() -> None:
    with (
        ScriptedModel([ScriptedError("RateLimitError", "slow down")] * 5),
        pytest.raises(ModelError, match="failed after 3 attempt") as info,
    ):
        client(retries=2).complete(USER)
    assert info.value.retryable
    assert info.value.attempts == 3
    assert "slow down" in str(info.value)


@pytest.mark.parametrize("kind", ["BadRequestError", "AuthenticationError"])
def test_permanent_errors_are_not_retried(kind: str) -> None:
    fake = ScriptedModel([ScriptedError(kind, "no"), "never reached"])
    with fake, pytest.raises(ModelError, match=kind):
        client().complete(USER)
    assert len(fake.requests) == 1


def test_backend_bug_is_not_retried() -> None:
    class Broken:
        def __init__(self):
            self.calls = 0

        def chat(self, model, messages, params):
            self.calls += 1
            raise ValueError("prompt too long")

    broken = Broken()
    register_provider("skvm-broken", broken)
    try:
        with pytest.raises(ModelError, match="ValueError: prompt too long"):
            ModelClient("skvm-broken/m", backoff_s=0.001).complete(USER)
    finally:
        unregister_provider("skvm-broken")
    assert broken.calls == 1


def test_script_exhausted() -> None:
    with ScriptedModel(["only one"]):
        c = client()
        c.complete(USER)
        with pytest.raises(ModelError, match="script exhausted"):
            c.complete(USER)


def test_invalid_tool_arguments_are_kept_raw() -> None:
    raw = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": FAKE_MODEL,
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "act", "arguments": "{oops"},
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    with ScriptedModel([raw]):
        result = client().complete(USER)
    assert result.tool_calls == (ToolCall("act", {}, "c1", "{oops"),)


def test_mock_response_passthrough() -> None:
    c = ModelClient("openai/gpt-4o-mini", api_key="sk-test", backoff_s=0.001)
    result = c.complete(USER, mock_response="mocked answer")
    assert result.text == "mocked answer"
    assert result.tokens_out > 0
    with pytest.raises(ModelError, match="InternalServerError"):
        ModelClient("openai/gpt-4o-mini", api_key="sk-test", retries=1, backoff_s=0.001).complete(
            USER, mock_response=Exception("provider down")
        )


def test_default_model_is_embedded() -> None:
    assert ModelClient().model_id == DEFAULT_MODEL == local_model.DEFAULT_MODEL
    assert ModelClient("openai/x").model_id == "openai/x"


# ------------------------------------------------------------------- fake server


def test_fake_server_text_and_tool_call() -> None:
    with FakeOpenAIServer(
        delay_s=0.05, reply="canned", tool_arguments={"action": "finish"}
    ) as server:
        c = ModelClient(server.model, api_base=server.api_base, api_key="not-empty", retries=0)
        text = c.complete(USER)
        call = c.complete(USER, tools=[ACT_TOOL], tool_choice=FORCE_ACT)
    assert text.text == "canned"
    assert text.latency_s >= 0.05
    assert call.tool_calls == (ToolCall("act", {"action": "finish"}, "call_0"),)
    assert server.stats() == {"requests": 2, "max_concurrent": 1}


def test_fake_server_serves_in_parallel() -> None:
    with FakeOpenAIServer(delay_s=0.3) as server:
        c = ModelClient(server.model, api_base=server.api_base, api_key="x", retries=0)

        async def main():
            return await asyncio.gather(*(c.acomplete(USER) for _ in range(6)))

        asyncio.run(main())
    # All six requests were in the server at once (how fast is a benchmark's question).
    assert server.stats()["max_concurrent"] == 6


def test_fake_server_stops_by_itself() -> None:
    server = FakeOpenAIServer(delay_s=0, lifetime_s=0.2).start()
    url = f"{server.api_base}/models"
    models = json.loads(urllib.request.urlopen(url, timeout=2).read())
    assert models["data"][0]["id"] == server.alias
    time.sleep(0.5)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=1)


def test_fake_server_max_requests_and_404() -> None:
    with FakeOpenAIServer(delay_s=0, max_requests=1) as server:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{server.api_base}/nope", timeout=2)
        assert info.value.code == 404
        request = urllib.request.Request(
            f"{server.api_base}/chat/completions",
            data=json.dumps({"model": "m", "messages": USER}).encode(),
            headers={"Content-Type": "application/json"},
        )
        answer = json.loads(urllib.request.urlopen(request, timeout=2).read())
        assert answer["choices"][0]["message"]["content"] == "ok"
        time.sleep(0.3)
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(request, timeout=1)


# --------------------------------------------------------- embedded request mapping


def test_prepare_request_forced_tool() -> None:
    messages = [
        {"role": "system", "content": "You run skills."},
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "1", "type": "function", "function": {"name": "act", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "1", "name": "act", "content": "done"},
    ]
    request = local_model.prepare_request(messages, {"tools": [ACT_TOOL], "tool_choice": FORCE_ACT})
    assert request["tool_choice"] == FORCE_ACT
    assert request["tools"][0]["function"]["name"] == "act"
    assert request["max_tokens"] == local_model.DEFAULT_MAX_TOKENS
    assert [m["role"] for m in request["messages"]] == ["system", "user", "assistant", "user"]
    assert request["messages"][0]["content"].startswith(
        "You run skills.\n\nCall the tool `act` (Do one action.)"
    )
    assert request["messages"][2]["content"] == "Called: act({})"
    assert request["messages"][3]["content"] == "[result of act]\ndone"
    assert "tools" not in local_model.prepare_request(
        USER, {"tools": [ACT_TOOL], "tool_choice": "auto"}
    )


def test_prepare_request_json_schema() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    for fmt in (
        {"type": "json_object", "schema": schema},
        {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    ):
        request = local_model.prepare_request(USER, {"response_format": fmt, "max_tokens": 9})
        assert request["response_format"] == {"type": "json_object", "schema": schema}
        assert request["max_tokens"] == 9
        assert request["messages"][0]["role"] == "system"


def test_normalize_response_is_deterministic() -> None:
    data = {
        "id": "chatcmpl-random",
        "created": 123,
        "model": "/abs/path/model.gguf",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "act", "arguments": "{}"},
                    "tool_calls": [
                        {
                            "id": "call__0_act_cmpl-xyz",
                            "type": "function",
                            "function": {"name": "act", "arguments": "{}"},
                        }
                    ],
                },
            }
        ],
    }
    out = local_model.normalize_response(data, DEFAULT_MODEL)
    assert (out["id"], out["created"], out["model"]) == ("chatcmpl-skvm-local", 0, DEFAULT_MODEL)
    assert out["choices"][0]["message"]["tool_calls"][0]["id"] == "call_0"
    assert "function_call" not in out["choices"][0]["message"]


def test_embedded_unavailable_reason(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv(local_model.PATH_ENV, str(tmp_path / "missing.gguf"))
    ok, why = local_model.embedded_available()
    assert not ok
    assert "missing" in why or "llama-cpp-python" in why


# ------------------------------------------------------------------ embedded model


@pytest.mark.embedded
def test_embedded_model_forced_tool_and_json() -> None:
    ok, why = local_model.embedded_available()
    if not ok:
        pytest.skip(f"embedded model unavailable: {why}")
    c = ModelClient(None, retries=0)
    call = c.complete(
        [{"role": "user", "content": "Read the file notes.txt."}],
        tools=[ACT_TOOL],
        tool_choice=FORCE_ACT,
        max_tokens=40,
    )
    assert len(call.tool_calls) == 1
    assert call.tool_calls[0].name == "act"
    assert call.tool_calls[0].arguments["action"] in ("read", "write", "finish")
    assert call.model == DEFAULT_MODEL
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
    }
    answer = c.complete(
        [{"role": "user", "content": "Give the largest city of France and its population."}],
        response_format={"type": "json_object", "schema": schema},
        max_tokens=60,
    )
    data = json.loads(answer.text)
    assert isinstance(data["city"], str) and isinstance(data["population"], int)
    assert c.usage.tokens_out > 0
    assert local_model.LocalModel.loaded()
