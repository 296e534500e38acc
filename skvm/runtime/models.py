"""The model layer the VM talks to: one client over litellm, plus in-process providers.

:class:`ModelClient` sends chat requests to any ``provider/model`` id through
litellm, retries provider errors and rate limits with exponential backoff,
and returns a small typed :class:`Completion`. litellm is imported lazily (it
costs seconds) and configured for offline use.

In-process providers (the embedded local model, the scripted fake used by
tests) implement :class:`ChatBackend` and are registered with
:func:`register_provider`; litellm then routes ``name/model`` ids to them, so
the rest of the VM cannot tell them from a hosted model.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, Self

import attrs

from skvm.diagnostics import Diagnostic, Severity, SkvmError
from skvm.runtime.model_workers import configured_workers

# Kept in sync with skvm.runtime.local_model.DEFAULT_MODEL (importing that
# module here would be harmless, but the id is what callers need).
DEFAULT_MODEL = "skvm-local/smollm2-135m"
LOCAL_PROVIDER = "skvm-local"
FAKE_PROVIDER = "skvm-fake"
FAKE_MODEL = "skvm-fake/scripted"

# litellm exception class names worth retrying: the provider may answer next time.
RETRYABLE_ERRORS = (
    "RateLimitError",
    "APIConnectionError",
    "InternalServerError",
    "Timeout",
    "ServiceUnavailableError",
)

_import_lock = threading.Lock()
_litellm_module = None


def litellm():
    """Import and configure litellm once, for offline use and without banners."""
    global _litellm_module
    if _litellm_module is None:
        with _import_lock:
            if _litellm_module is None:
                # Without these the import downloads a price list and errors print
                # a "file a bug" link meant for litellm's own developers.
                os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                os.environ.setdefault("LITELLM_DISABLE_BUG_REPORT_LINK", "true")
                import litellm as module

                module.suppress_debug_info = True
                _litellm_module = module
    return _litellm_module


class ModelError(SkvmError):
    """A model call that failed for good (after retries, or not retryable)."""

    def __init__(self, message: str, *, retryable: bool = False, attempts: int = 1):
        super().__init__(Diagnostic(Severity.ERROR, message))
        self.retryable = retryable
        self.attempts = attempts


# ------------------------------------------------------------------------- results


@attrs.frozen
class ToolCall:
    """One tool call the model asked for; ``arguments`` is the parsed JSON object."""

    name: str
    arguments: dict[str, Any] = attrs.field(factory=dict)
    id: str = ""
    # The arguments text as sent, kept when it was not a JSON object.
    raw_arguments: str | None = None


@attrs.frozen
class Completion:
    """A model's answer: text and/or tool calls, with usage and timing."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    finish_reason: str = ""
    model: str = ""
    attempts: int = 1
    cost_usd: float | None = None


@attrs.define
class TokenUsage:
    """Running totals for one client (updated under a lock: calls may be concurrent)."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    retries: int = 0


def _parse_arguments(text: Any) -> tuple[dict[str, Any], str | None]:
    if isinstance(text, dict):
        return text, None
    try:
        value = json.loads(text or "{}")
    except (TypeError, ValueError):
        return {}, text
    return (value, None) if isinstance(value, dict) else ({}, text)


def completion_from_response(response: Any, latency_s: float, attempts: int = 1) -> Completion:
    """Convert a litellm ``ModelResponse`` into a :class:`Completion`."""
    choice = response.choices[0]
    message = choice.message
    calls = []
    for index, call in enumerate(getattr(message, "tool_calls", None) or ()):
        arguments, raw = _parse_arguments(call.function.arguments)
        calls.append(ToolCall(call.function.name, arguments, call.id or f"call_{index}", raw))
    usage = getattr(response, "usage", None)
    return Completion(
        text=message.content or "",
        tool_calls=tuple(calls),
        tokens_in=getattr(usage, "prompt_tokens", 0) or 0,
        tokens_out=getattr(usage, "completion_tokens", 0) or 0,
        latency_s=latency_s,
        finish_reason=choice.finish_reason or "",
        model=response.model or "",
        attempts=attempts,
    )


# -------------------------------------------------------------------------- client


@attrs.define
class ModelClient:
    """Chat completions through litellm with retries, backoff and token accounting."""

    model: str | None = None
    retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    timeout_s: float | None = 600.0
    api_base: str | None = None
    api_key: str | None = None
    # Extra keyword arguments passed to every litellm call (e.g. mock_response).
    extra: dict[str, Any] = attrs.field(factory=dict)
    # Worker processes for calls made while others are in flight (see
    # skvm.runtime.model_workers); None: $SKVM_MODEL_WORKERS or the default, 0: none.
    workers: int | None = None
    usage: TokenUsage = attrs.field(factory=TokenUsage, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)
    _in_flight: int = attrs.field(default=0, init=False, repr=False)

    @property
    def model_id(self) -> str:
        """The model actually used: the configured one or the embedded default."""
        return self.model or DEFAULT_MODEL

    def _request(
        self, messages, tools, tool_choice, response_format, max_tokens, temperature, kwargs
    ):
        _ensure_builtin_provider(self.model_id)
        request: dict[str, Any] = {
            "model": self.model_id,
            "messages": list(messages),
            "temperature": temperature,
            "timeout": self.timeout_s,
            # We retry ourselves, with backoff; the SDKs underneath must not.
            "num_retries": 0,
            "max_retries": 0,
        }
        optional = {
            "tools": list(tools) if tools else None,
            "tool_choice": tool_choice if tools else None,
            "response_format": response_format,
            "max_tokens": max_tokens,
            "api_base": self.api_base,
            "api_key": self.api_key,
        }
        request.update({k: v for k, v in optional.items() if v is not None})
        request.update(self.extra)
        request.update(kwargs)
        return request

    def _delay(self, attempt: int) -> float:
        return min(self.backoff_max_s, self.backoff_s * (2**attempt))

    def _retry_delay(self, exc: Exception, attempt: int) -> float:
        """Seconds to wait before retrying after ``exc``; raise ModelError when it is final."""
        kind, retryable = classify_error(exc)
        error = ModelError(
            f"model call to '{self.model_id}' failed after {attempt + 1} attempt(s):"
            f" {kind}: {_short(exc)}",
            retryable=retryable,
            attempts=attempt + 1,
        )
        if not (retryable and attempt < self.retries):
            raise error from exc
        return self._delay(attempt)

    def _finish(self, response, start: float, attempt: int) -> Completion:
        return self._account(*priced_result(response, self.model_id), start, attempt)

    def _account(
        self, result: Completion, cost: float | None, start: float, attempt: int
    ) -> Completion:
        result = attrs.evolve(
            result,
            latency_s=time.perf_counter() - start,
            attempts=attempt + 1,
            cost_usd=cost,
        )
        with self._lock:
            self.usage.calls += 1
            self.usage.tokens_in += result.tokens_in
            self.usage.tokens_out += result.tokens_out
            self.usage.retries += attempt
        return result

    def complete(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        tools: Sequence[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        response_format: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float = 0,
        **kwargs: Any,
    ) -> Completion:
        """Send one chat request (retrying transient failures) and return the answer."""
        lite = litellm()
        request = self._request(
            messages, tools, tool_choice, response_format, max_tokens, temperature, kwargs
        )
        start = time.perf_counter()
        with self._lock:
            self._in_flight += 1
            concurrent = self._in_flight > 1
        pool = self._pool() if concurrent else None
        try:
            for attempt in itertools.count():
                future = pool.submit(request) if pool is not None else None
                try:
                    if future is None:
                        return self._finish(lite.completion(**request), start, attempt)
                    result, cost = future.result()
                except Exception as exc:
                    time.sleep(self._retry_delay(exc, attempt))
                    continue
                return self._account(result, cost, start, attempt)
        finally:
            with self._lock:
                self._in_flight -= 1
        raise AssertionError("unreachable")

    def _pool(self):
        """The worker pool for a call made while others are in flight, or None.

        In-process providers (the embedded model, test fakes) never leave this
        process; nor does anything when the client has no workers.
        """
        if configured_workers(self.workers) == 0:
            return None
        provider = self.model_id.split("/", 1)[0]
        if provider in _providers or provider == LOCAL_PROVIDER:
            return None
        # A provider registered with litellm directly was registered in this
        # process, so litellm is loaded when there can be one.
        lite = _litellm_module
        if lite is not None and any(e["provider"] == provider for e in lite.custom_provider_map):
            return None
        from skvm.runtime import model_workers

        return model_workers.shared(self.workers)

    def start_workers(self) -> bool:
        """Start the worker pool now, in the background, if this client would use it."""
        pool = self._pool()
        if pool is not None:
            pool.start()
        return pool is not None

    async def acomplete(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        tools: Sequence[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
        response_format: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float = 0,
        **kwargs: Any,
    ) -> Completion:
        """The asynchronous form of :meth:`complete`, with the same result."""
        lite = litellm()
        request = self._request(
            messages, tools, tool_choice, response_format, max_tokens, temperature, kwargs
        )
        start = time.perf_counter()
        for attempt in itertools.count():
            try:
                response = await lite.acompletion(**request)
            except Exception as exc:
                await asyncio.sleep(self._retry_delay(exc, attempt))
                continue
            return self._finish(response, start, attempt)
        raise AssertionError("unreachable")


def classify_error(exc: Exception) -> tuple[str, bool]:
    """A failed call's error class name, and whether the call is worth retrying.

    An error from a model worker arrives as its class name and verdict
    (:class:`~skvm.runtime.model_workers.RemoteCallError`); they are kept.
    """
    kind = getattr(exc, "kind", None) or type(exc).__name__
    retryable = getattr(exc, "retryable", None)
    if not isinstance(retryable, bool):
        retryable = kind in RETRYABLE_ERRORS or isinstance(exc, _retryable_classes())
    return kind, retryable


def priced_result(response: Any, model: str) -> tuple[Completion, float | None]:
    """A litellm response as a :class:`Completion` (no timing yet) and its price."""
    return completion_from_response(response, 0.0), _cost(response, model)


def _retryable_classes() -> tuple[type, ...]:
    lite = litellm()
    return tuple(getattr(lite, name) for name in RETRYABLE_ERRORS if hasattr(lite, name))


def _short(exc: Exception, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cost(response: Any, model: str) -> float | None:
    """The call's price in USD, or None when litellm does not know the model."""
    if model.split("/", 1)[0] in _providers:
        return 0.0
    # litellm prices every response it returns (None: a model it has no price
    # for); pricing it again cost about 2 ms of GIL-holding work per call.
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, dict) and "response_cost" in hidden:
        cost = hidden["response_cost"]
        return None if cost is None else float(cost)
    try:
        return float(litellm().completion_cost(completion_response=response))
    except Exception:  # noqa: BLE001  (unknown local models raise; cost is optional)
        return None


# ----------------------------------------------------------------- custom providers


class ChatBackend(Protocol):
    """An in-process model: takes OpenAI-style messages, returns an OpenAI response dict."""

    def chat(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Answer one chat request; ``params`` holds tools, tool_choice, response_format..."""


_providers: dict[str, ChatBackend] = {}
_provider_lock = threading.Lock()
_adapter_class = None


def _adapter(backend: ChatBackend):
    """Wrap a :class:`ChatBackend` in a litellm ``CustomLLM`` (class built lazily)."""
    global _adapter_class
    lite = litellm()
    if _adapter_class is None:

        class BackendAdapter(lite.CustomLLM):
            """A litellm custom provider that forwards to a ChatBackend."""

            def __init__(self, backend: ChatBackend):
                super().__init__()
                self.backend = backend

            def completion(self, *args: Any, **kwargs: Any):
                params = dict(kwargs.get("optional_params") or {})
                try:
                    data = self.backend.chat(kwargs["model"], list(kwargs["messages"]), params)
                except Exception as exc:
                    if type(exc).__module__.startswith(("litellm", "openai")):
                        raise  # already a provider error litellm knows how to classify
                    # A local backend's own failure (bad request, missing model) would
                    # otherwise be mapped to a retryable connection error.
                    raise _custom_error(400, f"{type(exc).__name__}: {exc}") from exc
                return lite.ModelResponse(**data)

            async def acompletion(self, *args: Any, **kwargs: Any):
                # Backends block (llama.cpp computes); keep the event loop free.
                return await asyncio.to_thread(self.completion, *args, **kwargs)

        _adapter_class = BackendAdapter
    return _adapter_class(backend)


def _custom_error(status: int, message: str) -> Exception:
    from litellm.llms.custom_llm import CustomLLMError

    return CustomLLMError(status_code=status, message=message)


def register_provider(name: str, backend: ChatBackend) -> None:
    """Route litellm model ids ``name/...`` to ``backend`` (replacing an earlier one)."""
    lite = litellm()
    with _provider_lock:
        handler = _adapter(backend)
        entries = [e for e in lite.custom_provider_map if e["provider"] != name]
        entries.append({"provider": name, "custom_handler": handler})
        lite.custom_provider_map = entries
        _providers[name] = backend
        lite.utils.custom_llm_setup()


def unregister_provider(name: str) -> None:
    """Remove a provider registered with :func:`register_provider`."""
    lite = litellm()
    with _provider_lock:
        lite.custom_provider_map = [e for e in lite.custom_provider_map if e["provider"] != name]
        _providers.pop(name, None)


def _ensure_builtin_provider(model: str) -> None:
    """Register the embedded model's provider the first time its id is used."""
    if model.split("/", 1)[0] == LOCAL_PROVIDER and LOCAL_PROVIDER not in _providers:
        from skvm.runtime import local_model

        local_model.register()


def response_dict(
    model: str,
    *,
    text: str | None = None,
    tool_calls: Iterable[ToolCall] = (),
    tokens_in: int = 0,
    tokens_out: int = 0,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """Build an OpenAI chat-completion response dict (what backends return)."""
    calls = [
        {
            "id": call.id or f"call_{index}",
            "type": "function",
            "function": {
                "name": call.name,
                "arguments": json.dumps(call.arguments, sort_keys=True),
            },
        }
        for index, call in enumerate(tool_calls)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": "chatcmpl-skvm",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason or ("tool_calls" if calls else "stop"),
                "message": message,
            }
        ],
        "usage": {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        },
    }


# ------------------------------------------------------------------- scripted fake


@attrs.frozen
class ScriptedError:
    """A scripted provider failure: ``kind`` names a litellm exception class."""

    kind: str = "RateLimitError"
    message: str = "scripted failure"

    def exception(self, model: str) -> Exception:
        """Build the litellm exception this failure stands for."""
        lite = litellm()
        return getattr(lite, self.kind)(
            message=self.message, llm_provider=FAKE_PROVIDER, model=model
        )


# What a script step may be: text, one or more tool calls, a failure, or a full dict.
ScriptStep = str | ToolCall | Sequence[ToolCall] | ScriptedError | Exception | dict
Script = Sequence[ScriptStep] | Callable[[list[dict[str, Any]], dict[str, Any]], ScriptStep]


def _words(messages: Iterable[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content") or "").split()) for m in messages)


class ScriptedModel:
    """A fake model for tests: answers come from a list or a function, in order.

    Install it with ``with ScriptedModel([...]) as fake:`` and call model id
    :data:`FAKE_MODEL`; every request is kept in ``fake.requests``.
    """

    def __init__(self, script: Script, *, provider: str = FAKE_PROVIDER):
        self.script = script
        self.provider = provider
        self.requests: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []
        self._steps = iter(script) if not callable(script) else None
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        """The litellm model id that reaches this fake."""
        return f"{self.provider}/scripted"

    def chat(
        self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> dict[str, Any]:
        """Answer with the next scripted step (raising when it is a failure)."""
        with self._lock:
            self.requests.append((messages, params))
            if self._steps is None:
                step = self.script(messages, params)
            else:
                step = next(self._steps, None)
                if step is None:
                    raise ScriptedError("BadRequestError", "script exhausted").exception(model)
        if isinstance(step, ScriptedError):
            raise step.exception(model)
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, dict):
            return step
        full = f"{self.provider}/{model}" if "/" not in model else model
        tokens_in = _words(messages)
        if isinstance(step, str):
            return response_dict(full, text=step, tokens_in=tokens_in, tokens_out=len(step.split()))
        calls = (step,) if isinstance(step, ToolCall) else tuple(step)
        out = sum(len(json.dumps(c.arguments).split()) for c in calls)
        return response_dict(full, tool_calls=calls, tokens_in=tokens_in, tokens_out=out)

    def install(self) -> ScriptedModel:
        """Register this fake as the handler of its provider name."""
        register_provider(self.provider, self)
        return self

    def uninstall(self) -> None:
        """Remove this fake's provider."""
        unregister_provider(self.provider)

    def __enter__(self) -> Self:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()


__all__ = [
    "DEFAULT_MODEL",
    "FAKE_MODEL",
    "ChatBackend",
    "Completion",
    "ModelClient",
    "ModelError",
    "ScriptedError",
    "ScriptedModel",
    "TokenUsage",
    "ToolCall",
    "classify_error",
    "completion_from_response",
    "litellm",
    "priced_result",
    "register_provider",
    "response_dict",
    "unregister_provider",
]
