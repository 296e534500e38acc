"""The agent loop behind ``llm.step`` and the single calls behind ``llm.gen`` / ``llm.judge``.

Two protocols drive the same five tools (``read_file``, ``write_file``,
``list_dir``, ``run_command``, ``finish``), all executed through the sandbox
with the skill's ``allowed-tools``:

* ``tools`` (hosted models): ordinary tool calling with ``tool_choice="auto"``;
  a plain-text answer to a step whose result is text is taken as the result;
* ``act`` (the embedded 135M model, which cannot choose tools): every turn
  *forces* one tool, ``act``, whose arguments are a JSON-schema union of the
  five actions (``{"action": "read_file", "path": …}``, …,
  ``{"action": "finish", "result": …}``), so a grammar constrains the answer.

In both, the last turn allowed forces ``finish`` so the loop always ends
with a typed result or a clear budget error. Budgets: turns per step
(``--max-steps``), tokens for the whole run (``--budget-tokens``) and the
run's wall-clock deadline (``--timeout``). Provider retries come from
:class:`~skvm.runtime.models.ModelClient`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import attrs

from skvm.ir import types as T
from skvm.runtime import sandbox, values
from skvm.runtime.models import Completion, ModelClient

#: Characters of a tool's output shown back to the model.
OBSERVATION_CHARS = 4000
SMALL_OBSERVATION_CHARS = 1200
#: Turns per step when the op and the user set none.
DEFAULT_MAX_TURNS = 8
SMALL_MAX_TURNS = 3
#: Longest answer asked for in one turn (the embedded model rambles: keep it short).
TURN_MAX_TOKENS = 1024
SMALL_TURN_MAX_TOKENS = 200
#: Model-id prefixes that get the ``act`` protocol under ``auto``.
ACT_PROVIDERS = ("skvm-local/",)


class StepFailed(Exception):
    """A model op could not produce its result (budget, bad answer, ...)."""


class BudgetExhausted(StepFailed):
    """A turn, token or time budget ran out."""


@attrs.define
class RunBudget:
    """Budgets shared by every model op of a run (thread-safe)."""

    max_tokens: int | None = None
    deadline: float | None = None  # time.monotonic() value
    used_tokens: int = 0
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def charge(self, completion: Completion) -> None:
        """Count a completion's tokens; raise when the token budget is exceeded."""
        with self._lock:
            self.used_tokens += completion.tokens_in + completion.tokens_out
            used = self.used_tokens
        if self.max_tokens is not None and used > self.max_tokens:
            raise BudgetExhausted(f"token budget exhausted ({used} > {self.max_tokens} tokens)")

    def check(self) -> None:
        """Raise when the token budget or the deadline is already gone."""
        if self.max_tokens is not None and self.used_tokens >= self.max_tokens:
            raise BudgetExhausted(
                f"token budget exhausted ({self.used_tokens} >= {self.max_tokens} tokens)"
            )
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise BudgetExhausted("time budget exhausted (--timeout)")


@attrs.define
class StepRecord:
    """What a model op did: its result, the conversation and its tool calls."""

    value: Any = None
    messages: list[dict[str, Any]] = attrs.field(factory=list)
    tool_calls: list[dict[str, Any]] = attrs.field(factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    turns: int = 0
    violations: list[str] = attrs.field(factory=list)

    def add(self, completion: Completion) -> None:
        """Count one completion's tokens and turn."""
        self.tokens_in += completion.tokens_in
        self.tokens_out += completion.tokens_out
        self.turns += 1


# ----------------------------------------------------------------------- tools

_TOOL_SPECS: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    # name: (description, properties, required)
    "read_file": ("Read a text file of the work directory.", {"path": {"type": "string"}}, ("path",)),
    "write_file": (
        "Write a text file in the work directory (replaces it).",
        {"path": {"type": "string"}, "content": {"type": "string"}},
        ("path", "content"),
    ),
    "list_dir": ("List a directory of the work directory.", {"path": {"type": "string"}}, ()),
    "run_command": (
        "Run a shell command in the work directory; returns exit status and output.",
        {"command": {"type": "string"}},
        ("command",),
    ),
}


def _specs(allowed: tuple[str, ...] | None):
    return [(n, spec) for n, spec in _TOOL_SPECS.items() if allowed is None or n in allowed]


def tool_definitions(
    result_schema: dict[str, Any], allowed: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """OpenAI tool definitions of the agent tools (``finish`` typed by the result)."""
    tools = []
    for name, (description, props, required) in _specs(allowed):
        tools.append(_function(name, description, props, required))
    tools.append(
        _function("finish", "Finish the step with its result.", {"result": result_schema}, ("result",))
    )
    return tools


def act_definition(
    result_schema: dict[str, Any], allowed: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The single ``act`` tool of the act protocol: a union of the allowed actions."""
    variants = []
    for name, (_, props, required) in _specs(allowed):
        variants.append(_variant(name, props, required))
    variants.append(_variant("finish", {"result": result_schema}, ("result",)))
    params = {"type": "object", "anyOf": variants}
    return {
        "type": "function",
        "function": {
            "name": "act",
            "description": "Do one action: read_file, write_file, list_dir, run_command or finish.",
            "parameters": params,
        },
    }


def _variant(action: str, props: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"action": {"const": action}, **props},
        "required": ["action", *required],
    }


def _function(name, description, props, required) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": props, "required": list(required)},
        },
    }


def _forced(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


@attrs.define
class AgentTools:
    """Executes the agent's tool calls through the sandbox and allowed-tools."""

    policy: sandbox.SandboxPolicy
    observation_chars: int = OBSERVATION_CHARS

    def call(self, name: str, args: dict[str, Any]) -> tuple[str, str | None]:
        """Run one tool call; return (observation, violation reason or None)."""
        handler = {
            "read_file": self._read,
            "write_file": self._write,
            "list_dir": self._list,
            "run_command": self._run,
        }.get(name)
        if handler is None:
            return f"error: unknown tool '{name}'", None
        try:
            return self._cut(handler(args)), None
        except sandbox.SandboxViolation as exc:
            return f"refused by the sandbox: {exc.reason}", exc.reason
        except (OSError, UnicodeDecodeError, KeyError, TypeError) as exc:
            return f"error: {type(exc).__name__}: {exc}", None

    def _cut(self, text: str) -> str:
        limit = self.observation_chars
        return text if len(text) <= limit else text[: limit - 20] + "\n[... output cut ...]"

    def _read(self, args: dict[str, Any]) -> str:
        path = str(args["path"])
        sandbox.check_tool_allowed(self.policy, "read", [path])
        with open(sandbox.open_beneath(self.policy, path, os.O_RDONLY), encoding="utf-8") as fh:
            return fh.read()

    def _write(self, args: dict[str, Any]) -> str:
        path = str(args["path"])
        sandbox.check_tool_allowed(self.policy, "write", [path])
        sandbox.make_parents_beneath(self.policy, path)
        content = values.to_text(args.get("content", ""))
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        with open(sandbox.open_beneath(self.policy, path, flags), "w", encoding="utf-8") as fh:
            fh.write(content)
        return f"wrote {len(content)} characters to {path}"

    def _list(self, args: dict[str, Any]) -> str:
        path = str(args.get("path") or ".")
        sandbox.check_tool_allowed(self.policy, "list", [path])
        fd = sandbox.open_beneath(self.policy, path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with os.scandir(fd) as entries:
                names = sorted(
                    e.name + ("/" if e.is_dir() else "") for e in entries if e.name not in (".skvm", ".tmp")
                )
        finally:
            os.close(fd)
        return "\n".join(names) or "(empty)"

    def _run(self, args: dict[str, Any]) -> str:
        command = str(args["command"])
        sandbox.check_tool_allowed(self.policy, "exec", [command])
        result = sandbox.run(command, self.policy, shell=True)
        status = result.killed_reason or f"exit {result.returncode}"
        return f"{status}\n{result.stdout}" + (f"\n[stderr]\n{result.stderr}" if result.stderr else "")


# ----------------------------------------------------------------------- prompts


def _inputs_text(inputs: list[tuple[str, Any]], limit: int) -> str:
    if not inputs:
        return ""
    lines = []
    for name, value in inputs:
        lines.append(f"%{name}:\n{values.preview(value, limit)}")
    return "\n\nInputs:\n" + "\n".join(lines)


def _user_prompt(instruction: str, inputs, result_type: T.Type, limit: int) -> str:
    return (
        f"Step: {instruction}"
        + _inputs_text(inputs, limit)
        + f"\n\nThe result must be of type {result_type}."
    )


def choose_protocol(model_id: str, protocol: str = "auto") -> str:
    """``act`` for the embedded model (or when asked), ``tools`` otherwise."""
    if protocol != "auto":
        return protocol
    return "act" if model_id.startswith(ACT_PROVIDERS) else "tools"


# ----------------------------------------------------------------------- llm.step


@attrs.define
class StepRequest:
    """Everything one ``llm.step`` needs."""

    instruction: str
    system: str
    inputs: list[tuple[str, Any]]
    result_type: T.Type
    max_turns: int | None = None
    max_tokens: int | None = None  # per-step token budget (op attribute)
    tools: tuple[str, ...] | None = None  # the op's ``tools``: None = all five, () = finish only


def run_step(
    client: ModelClient,
    tools: AgentTools,
    request: StepRequest,
    budget: RunBudget,
    *,
    protocol: str = "auto",
    cancelled: threading.Event | None = None,
) -> StepRecord:
    """Run the agent loop of one ``llm.step`` and return its record (value set)."""
    proto = choose_protocol(client.model_id, protocol)
    small = proto == "act"
    max_turns = request.max_turns or (SMALL_MAX_TURNS if small else DEFAULT_MAX_TURNS)
    if request.tools == ():
        max_turns = 1  # no tools: the one turn is the forced finish
    schema = values.json_schema_for(request.result_type)
    limit = SMALL_OBSERVATION_CHARS if small else OBSERVATION_CHARS
    tools.observation_chars = limit
    protocol_note = (
        "Each turn, call the tool `act` with one action: read_file(path), write_file(path, content),"
        " list_dir(path), run_command(command), or finish(result) when the step is done."
        if small
        else "Use the tools to do the step, then call `finish` with the result."
    )
    record = StepRecord()
    record.messages = [
        {"role": "system", "content": request.system + "\n\n" + protocol_note},
        {"role": "user", "content": _user_prompt(request.instruction, request.inputs, request.result_type, limit)},
    ]
    allowed = request.tools
    definitions = [act_definition(schema, allowed)] if small else tool_definitions(schema, allowed)
    finish_only = [_function("finish", "Finish the step with its result.", {"result": schema}, ("result",))]
    try:
        return _loop(client, tools, request, budget, record, definitions, finish_only, max_turns, small, proto, cancelled)
    except StepFailed as exc:
        exc.record = record  # type: ignore[attr-defined]  (kept for the trace)
        raise


def _loop(client, tools, request, budget, record, definitions, finish_only, max_turns, small, proto, cancelled):
    for turn in range(1, max_turns + 1):
        if cancelled is not None and cancelled.is_set():
            raise StepFailed("cancelled")
        budget.check()
        last = turn == max_turns
        if last:
            offered, choice = finish_only, _forced("finish")
        elif small:
            offered, choice = definitions, _forced("act")
        else:
            offered, choice = definitions, "auto"
        completion = client.complete(
            record.messages,
            tools=offered,
            tool_choice=choice,
            max_tokens=SMALL_TURN_MAX_TOKENS if small else TURN_MAX_TOKENS,
        )
        record.add(completion)
        budget.charge(completion)
        if request.max_tokens is not None and record.tokens_in + record.tokens_out > request.max_tokens:
            raise BudgetExhausted(
                f"step token budget exhausted ({record.tokens_in + record.tokens_out}"
                f" > {request.max_tokens} tokens)"
            )
        done, value = _handle_turn(
            completion, record, tools, request.result_type, proto, request.tools
        )
        if done:
            record.value = value
            return record
    raise BudgetExhausted(f"turn budget exhausted ({max_turns} turns) without finish")


def _assistant_message(completion: Completion) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": completion.text or None}
    if completion.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id or f"call_{i}",
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments, sort_keys=True)},
            }
            for i, call in enumerate(completion.tool_calls)
        ]
    return message


def _handle_turn(completion, record: StepRecord, tools: AgentTools, result_type, proto, allowed_tools=None):
    """Apply one answer: run its tool calls; return (finished, value)."""
    record.messages.append(_assistant_message(completion))
    if not completion.tool_calls:
        if result_type.name in ("text", "any") and completion.text.strip():
            return True, completion.text.strip()
        record.messages.append(
            {"role": "user", "content": "Call a tool; call `finish` with the result when done."}
        )
        return False, None
    for call in completion.tool_calls:
        name, args = call.name, dict(call.arguments)
        if name == "act":
            name = str(args.pop("action", ""))
        entry: dict[str, Any] = {"name": name, "arguments": args}
        if name not in ("finish", *_TOOL_SPECS) or (
            allowed_tools is not None and name != "finish" and name not in allowed_tools
        ):
            observation = f"error: tool '{name}' is not available in this step"
            entry["result"] = observation
            record.tool_calls.append(entry)
            record.messages.append(_tool_message(call, observation))
            continue
        if name == "finish":
            entry["result"] = "finished"
            record.tool_calls.append(entry)
            value = values.coerce(args.get("result"), result_type)
            try:
                values.check(value, result_type)
            except values.TypeMismatch as exc:
                observation = f"error: the result {exc}; call finish again with a valid result"
                record.messages.append(_tool_message(call, observation))
                entry["result"] = observation
                continue
            return True, value
        observation, violation = tools.call(name, args)
        entry["result"] = values.preview(observation, 400)
        if violation:
            entry["violation"] = violation
            record.violations.append(violation)
        record.tool_calls.append(entry)
        record.messages.append(_tool_message(call, observation))
    return False, None


def _tool_message(call, observation: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call.id or "call_0", "name": call.name, "content": observation}


# ----------------------------------------------------------------------- llm.gen / judge


def answer_format(model_id: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A response_format asking for ``{"answer": <schema>}``.

    In-process providers (llama.cpp) take ``json_object`` with a ``schema``;
    hosted OpenAI-style models take ``json_schema``.
    """
    wrapper = {
        "type": "object",
        "properties": {"answer": schema or {}},
        "required": ["answer"],
    }
    if model_id.startswith(("skvm-local/", "skvm-fake/")):
        return {"type": "json_object", "schema": wrapper}
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": wrapper}}


def run_single(
    client: ModelClient,
    system: str,
    instruction: str,
    inputs: list[tuple[str, Any]],
    result_type: T.Type,
    budget: RunBudget,
    *,
    question: bool = False,
) -> StepRecord:
    """One constrained call for ``llm.gen`` / ``llm.judge``; the answer is typed."""
    budget.check()
    schema = values.json_schema_for(result_type)
    small = client.model_id.startswith(ACT_PROVIDERS)
    limit = SMALL_OBSERVATION_CHARS if small else OBSERVATION_CHARS
    kind = "Question" if question else "Task"
    record = StepRecord()
    record.messages = [
        {"role": "system", "content": system + '\n\nAnswer with one JSON object {"answer": ...}.'},
        {
            "role": "user",
            "content": f"{kind}: {instruction}" + _inputs_text(inputs, limit)
            + f"\n\nThe answer must be of type {result_type}.",
        },
    ]
    completion = client.complete(
        record.messages,
        response_format=answer_format(client.model_id, schema),
        max_tokens=SMALL_TURN_MAX_TOKENS if small else TURN_MAX_TOKENS,
    )
    record.add(completion)
    budget.charge(completion)
    record.messages.append(_assistant_message(completion))
    raw = completion.text
    try:
        data = values._parse_json(raw)
        value = data["answer"] if isinstance(data, dict) and "answer" in data else data
    except ValueError:
        value = raw  # let coercion try (plain "yes" for a bool, text for text)
    value = values.coerce(value, result_type)
    try:
        values.check(value, result_type)
    except values.TypeMismatch as exc:
        raise StepFailed(f"the model's answer {exc}") from None
    record.value = value
    return record
