"""One handler per executable op name: the VM's instruction set.

A handler is ``handler(interp, op, frame, token, op_id)`` and returns the
op's result values (a tuple) or an :class:`~skvm.runtime.interpreter.Outcome`.
It raises :class:`~skvm.runtime.interpreter.OpFailure` for a failure of the
op itself; the interpreter records, checks types and reports.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import platform
import shlex
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skvm.diagnostics import SkvmError
from skvm.ir.attributes import SymbolRef, ValueRef
from skvm.ir.operation import Op
from skvm.runtime import agent, sandbox, values
from skvm.runtime.context import select_context
from skvm.runtime.interpreter import (
    Cancelled,
    CancelToken,
    Frame,
    Interpreter,
    OpFailure,
    Outcome,
)
from skvm.runtime.models import ModelError

Handler = Callable[[Interpreter, Op, Frame, CancelToken, str], Any]
HANDLERS: dict[str, Handler] = {}

#: Longest command output kept as an op's text result.
FETCH_LIMIT_BYTES = 4 << 20


def handler(*names: str):
    """Register a function as the handler of ``names``."""

    def register(fn: Handler) -> Handler:
        for name in names:
            HANDLERS[name] = fn
        return fn

    return register


def _operand(interp: Interpreter, op: Op, frame: Frame, index: int = 0) -> Any:
    return frame.get(op.operands[index], op)


def _path_of(op: Op, frame: Frame, key: str = "path") -> str | None:
    """A path given as attribute (string or %value) or as the first operand."""
    raw = op.attr(key)
    if isinstance(raw, ValueRef):
        return values.to_text(frame.get(raw.name, op)).strip()
    if isinstance(raw, str):
        return raw
    return None


def _open(interp: Interpreter, op: Op, path: str, flags: int) -> int:
    """An fd for ``path`` in the work directory (``sandbox.open_beneath``); OSError as raised."""
    try:
        return sandbox.open_beneath(interp.policy, path, flags)
    except sandbox.SandboxViolation as exc:
        raise OpFailure(op, f"sandbox: {exc.reason}") from None


def _make_parents(interp: Interpreter, op: Op, path: str) -> None:
    """``mkdir -p`` of ``path``'s parent, beneath the work directory; OSError as raised."""
    try:
        sandbox.make_parents_beneath(interp.policy, path)
    except sandbox.SandboxViolation as exc:
        raise OpFailure(op, f"sandbox: {exc.reason}") from None


def _allowed(interp: Interpreter, op: Op, kind: str, words: list[str]) -> None:
    try:
        sandbox.check_tool_allowed(interp.policy, kind, words)
    except sandbox.SandboxViolation as exc:
        raise OpFailure(op, f"sandbox: {exc.reason}") from None


# ------------------------------------------------------------------ commands


def _run_command(interp: Interpreter, op: Op, argv: list[str], shell: bool) -> sandbox.ExecResult:
    _allowed(interp, op, "exec", argv)
    policy = interp.command_policy()
    timeout = op.attr("timeout")
    if isinstance(timeout, int) and timeout < policy.timeout_s:
        policy = sandbox.SandboxPolicy(**{**_policy_fields(policy), "timeout_s": float(timeout)})
    try:
        return sandbox.run(argv, policy, shell=shell)
    except sandbox.SandboxViolation as exc:
        raise OpFailure(op, f"sandbox: {exc.reason}") from None


def _policy_fields(policy: sandbox.SandboxPolicy) -> dict[str, Any]:
    import attrs

    return attrs.asdict(policy, recurse=False)


def _command_failure(interp: Interpreter, op: Op, result: sandbox.ExecResult) -> OpFailure:
    shown = result.argv[-1] if result.argv[:2] == ("/bin/sh", "-c") else shlex.join(result.argv)
    if result.killed_reason:
        reason = f"`{shown}` was stopped by the sandbox: {result.killed_reason}"
    else:
        reason = f"`{shown}` exited with status {result.returncode}"
    tail = result.stderr.strip().splitlines()[-3:]
    if tail:
        reason += ": " + " | ".join(tail)
    notes = ()
    if result.returncode == 127:
        first = result.argv[0] if result.argv[:2] != ("/bin/sh", "-c") else shlex.split(shown or "x")[0]
        notes = interp.missing_binary_note(os.path.basename(first))
    return OpFailure(op, reason, notes)


def _run_argv(interp: Interpreter, op: Op, frame: Frame) -> sandbox.ExecResult:
    """Run ``op``'s ``argv`` (a shell line with ``shell``); a failed command raises OpFailure."""
    argv = interp.argv(op, op.attr("argv", ()), frame)
    shell = op.has_attr("shell")
    result = _run_command(interp, op, argv if not shell else [argv[0]], shell)
    if not result.ok:
        raise _command_failure(interp, op, result)
    return result


@handler("tool.exec")
def _exec(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    return (_run_argv(interp, op, frame).stdout,) * len(op.results)


#: Script extension -> interpreter argv prefix (None: run the file itself).
INTERPRETERS: dict[str, tuple[str, ...] | None] = {
    ".py": ("python3",),
    ".sh": ("bash",),
    ".bash": ("bash",),
    ".js": ("node",),
    ".mjs": ("node",),
    ".cjs": ("node",),
    ".ts": ("npx", "--yes", "tsx"),
    ".rb": ("ruby",),
    ".pl": ("perl",),
    ".php": ("php",),
    ".r": ("Rscript",),
}


@handler("tool.script")
def _script(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    ref = op.attr("script")
    path = interp.resource_path(ref.name)
    if path is None:
        raise OpFailure(op, f"@{ref.name} is not a bundled resource")
    if not (interp.workdir / path).is_file():
        raise OpFailure(op, f"bundled script @{ref.name} ({path}) is not available")
    prefix = INTERPRETERS.get(Path(path).suffix.lower())
    args = interp.argv(op, op.attr("args", ()), frame)
    argv = [*(prefix or ()), path, *args] if prefix else [f"./{path}", *args]
    if prefix == ("python3",):
        # allowed-tools usually say Bash(python:*); either spelling grants the script.
        try:
            sandbox.check_tool_allowed(interp.policy, "exec", ["python", path, *args])
        except sandbox.SandboxViolation:
            _allowed(interp, op, "exec", argv)
    else:
        _allowed(interp, op, "exec", argv)
    result = sandbox.run(argv, interp.command_policy())
    if not result.ok:
        raise _command_failure(interp, op, result)
    return (result.stdout,) * len(op.results)


@handler("check.cmd")
def _check_cmd(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    _run_argv(interp, op, frame)
    return ()


# ------------------------------------------------------------------ files


@handler("tool.read")
def _read(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    resource = op.attr("resource")
    if isinstance(resource, SymbolRef):
        path = interp.resource_path(resource.name)
        if path is None:
            raise OpFailure(op, f"@{resource.name} is not a bundled resource")
    else:
        path = _path_of(op, frame)
        if path is None and op.operands:
            path = values.to_text(_operand(interp, op, frame)).strip()
    if not path:
        raise OpFailure(op, "no path to read")
    path = interp.rewrite_resource_paths(path)  # a bundled file, unless the work dir has one
    _allowed(interp, op, "read", [path])
    try:
        with open(_open(interp, op, path, os.O_RDONLY), encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise OpFailure(op, f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OpFailure(op, f"cannot read {path}: {exc}") from None
    return (text,)


@handler("tool.write")
def _write(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    path = _path_of(op, frame)
    if not path:
        raise OpFailure(op, "no path to write")
    _allowed(interp, op, "write", [path])
    content = values.to_text(_operand(interp, op, frame))
    try:
        _make_parents(interp, op, path)
        append = op.has_attr("append")
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        with open(_open(interp, op, path, flags), "a" if append else "w", encoding="utf-8") as fh:
            fh.write(content)
    except OSError as exc:
        raise OpFailure(op, f"cannot write {path}: {exc}") from None
    return (path,) * len(op.results)


@handler("tool.fetch")
def _fetch(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    url = _path_of(op, frame, "url") or ""
    if not interp.options.allow_network:
        raise OpFailure(op, f"sandbox: network access to {url} is not allowed (pass --allow-network)")
    _allowed(interp, op, "fetch", [url])
    if not url.startswith(("http://", "https://")):
        raise OpFailure(op, f"only http(s) URLs can be fetched, not {url!r}")
    request = urllib.request.Request(url, method=op.attr("method", "GET"))
    headers = op.attr("headers")
    for key, value in (headers.items if headers is not None else ()):
        request.add_header(key, str(value))
    try:
        with urllib.request.urlopen(request, timeout=interp.command_policy().timeout_s) as response:
            data = response.read(FETCH_LIMIT_BYTES)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise OpFailure(op, f"fetching {url} failed: {exc}") from None
    return (data.decode("utf-8", "replace"),) * len(op.results)


@handler("check.exists")
def _check_exists(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    path = _path_of(op, frame)
    if path is None and op.operands:
        path = values.to_text(_operand(interp, op, frame)).strip()
    try:
        os.close(_open(interp, op, path or "", os.O_PATH))
    except (FileNotFoundError, NotADirectoryError):
        raise OpFailure(op, f"'{path}' does not exist") from None
    except OSError as exc:
        raise OpFailure(op, f"cannot check {path}: {exc.strerror or exc}") from None
    return ()


@handler("check.schema")
def _check_schema(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    value = values.coerce(_operand(interp, op, frame), values_json())
    try:
        values.validate_schema(value, json.loads(op.attr("schema")))
    except values.TypeMismatch as exc:
        raise OpFailure(op, f"%{op.operands[0]} {exc}") from None
    return ()


def values_json():
    """The plain ``json`` type (for coercing text before a schema check)."""
    from skvm.ir import types as T

    return T.JSON


# ------------------------------------------------------------------ environment

#: sys.platform prefixes -> the names env.if uses.
OS_NAMES = {"linux": "linux", "darwin": "macos", "win32": "windows", "cygwin": "windows"}
ARCH_NAMES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def _python_satisfies(spec: str) -> bool:
    current = ".".join(map(str, sys.version_info[:3]))
    try:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
    except ImportError:  # packaging is optional: compare a bare version prefix
        return current.startswith(spec.lstrip("=<>~! "))
    try:
        return SpecifierSet(spec).contains(current)
    except InvalidSpecifier:
        return current.startswith(spec.lstrip("=<>~! "))


#: env.if kind -> test of its value on this host.
ENV_CONDITIONS: dict[str, Callable[[str], bool]] = {
    "os": lambda v: OS_NAMES.get(sys.platform, sys.platform) == v.lower(),
    "bin": lambda v: shutil.which(v) is not None,
    "env": lambda v: v in os.environ,
    "arch": lambda v: ARCH_NAMES.get(platform.machine().lower(), platform.machine()) == v.lower(),
    "python": _python_satisfies,
}


@handler("env.if")
def _env_if(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    holds = ENV_CONDITIONS[op.attr("kind").name](op.attr("value"))
    if op.has_attr("negate"):
        holds = not holds
    region = op.regions[0] if holds else op.regions[1]
    out = interp.run_region(region, Frame(frame), token, f"{op_id}/{0 if holds else 1}")
    return out if out is not None else (None,) * len(op.results)


# ------------------------------------------------------------------ control flow


@handler("ctl.if")
def _if(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    cond = values.coerce(_operand(interp, op, frame), values_bool())
    if not isinstance(cond, bool):
        raise OpFailure(op, f"condition %{op.operands[0]} is not a bool: {values.describe(cond)}")
    index = 0 if cond else 1
    out = interp.run_region(op.regions[index], Frame(frame), token, f"{op_id}/{index}")
    return out if out is not None else ()


def values_bool():
    """The ``bool`` type."""
    from skvm.ir import types as T

    return T.BOOL


def _collection(interp: Interpreter, op: Op, frame: Frame) -> list[Any]:
    from skvm.ir import types as T

    items = values.coerce(_operand(interp, op, frame), T.list_of(T.ANY))
    if isinstance(items, dict):
        items = list(items.items())
    if not isinstance(items, list):
        raise OpFailure(op, f"%{op.operands[0]} is not a list: {values.describe(items)}")
    return items


def _iteration(interp: Interpreter, op: Op, frame: Frame, token, op_id, index: int, item: Any):
    body = op.regions[0]
    inner = Frame(frame)
    if body.args:
        arg = body.args[0]
        try:
            inner.set(arg.name, values.coerce_and_check(item, arg.type))
        except values.TypeMismatch as exc:
            raise OpFailure(op, f"element {index} {exc}") from None
    out = interp.run_region(body, inner, token, f"{op_id}/0")
    return out[0] if out else None


@handler("ctl.for_each")
def _for_each(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    results = [
        _iteration(interp, op, frame, token, op_id, i, item)
        for i, item in enumerate(_collection(interp, op, frame))
    ]
    return (results,) if op.results else ()


def _width(interp: Interpreter, op: Op, tasks: int) -> int:
    width = op.attr("max_width") or interp.options.max_width
    return max(1, min(int(width), tasks))


def run_concurrently(interp: Interpreter, op: Op, token: CancelToken, jobs: list[Callable]):
    """Run ``jobs(child_token)`` on a bounded pool; join in order.

    Without ``collect_errors`` the first failure cancels the others and is
    raised (the earliest-declared one when several fail). With it, failed
    jobs give None and the failures are reported as warnings.
    """
    collect = op.has_attr("collect_errors")
    group = token.child()
    results: list[Any] = [None] * len(jobs)
    errors: dict[int, BaseException] = {}
    if not jobs:
        return results
    with concurrent.futures.ThreadPoolExecutor(_width(interp, op, len(jobs)), "skvm-par") as pool:
        futures = {pool.submit(job, group.child()): i for i, job in enumerate(jobs)}
        for future in concurrent.futures.as_completed(futures):
            index = futures[future]
            try:
                results[index] = future.result()
            except concurrent.futures.CancelledError:
                continue
            except BaseException as exc:  # noqa: BLE001  (re-raised below)
                errors[index] = exc
                if not collect and not isinstance(exc, Cancelled):
                    group.event.set()
                    for other in futures:
                        other.cancel()
    real = {i: e for i, e in errors.items() if not isinstance(e, Cancelled)}
    if token.is_set():
        raise Cancelled()
    if real and not collect:
        raise real[min(real)]
    if errors and not collect:
        raise errors[min(errors)]
    for index, exc in sorted(real.items()):
        message = exc.diagnostics[0].message if isinstance(exc, SkvmError) else str(exc)
        from skvm.diagnostics import Diagnostic, Severity

        interp.warnings.append(
            Diagnostic(Severity.WARNING, f"{op.name} branch {index} failed (collected): {message}", op.location)
        )
    return results


@handler("ctl.map")
def _map(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    items = _collection(interp, op, frame)
    jobs = [
        (lambda t, i=i, item=item: _iteration(interp, op, frame, t, op_id, i, item))
        for i, item in enumerate(items)
    ]
    results = run_concurrently(interp, op, token, jobs)
    return (results,) if op.results else ()


@handler("ctl.parallel")
def _parallel(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    def branch(index: int):
        region = op.regions[index]
        yielded = len(region.ops[-1].operands) if region.ops and region.ops[-1].name == "ctl.yield" else 0

        def job(t: CancelToken):
            out = interp.run_region(region, Frame(frame), t, f"{op_id}/{index}")
            return out if out is not None else ()

        return job, yielded

    pairs = [branch(i) for i in range(len(op.regions))]
    outs = run_concurrently(interp, op, token, [job for job, _ in pairs])
    flat: list[Any] = []
    for out, (_, count) in zip(outs, pairs):
        flat.extend(out if out is not None else (None,) * count)
    return tuple(flat)


@handler("ctl.call")
def _call(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    callee = interp.symbols.get(op.attr("callee").name)
    if callee is None or callee.name != "skill.proc":
        raise OpFailure(op, f"@{op.attr('callee').name} is not a procedure")
    args = [frame.get(name, op) for name in op.operands]
    typed = []
    for param, value in zip(callee.params, args):
        try:
            typed.append(values.coerce_and_check(value, param.type))
        except values.TypeMismatch as exc:
            raise OpFailure(op, f"argument %{param.name} {exc}") from None
    return interp.call_proc(callee, typed, token, f"@{callee.sym_name}")


# ------------------------------------------------------------------ jit


@handler("jit.solid")
def _solid(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    argv = interp.argv(op, op.attr("argv", ()), frame)
    shell = op.has_attr("shell")
    try:
        result = _run_command(interp, op, argv if not shell else [argv[0]], shell)
        ok = result.ok
    except OpFailure:
        ok = False  # a refused command falls back to the model like a failed one
    if ok:
        return (result.stdout,) * len(op.results)
    out = interp.run_region(op.regions[0], Frame(frame), token, f"{op_id}/0")
    return Outcome(out if out is not None else (), outcome="fallback")


# ------------------------------------------------------------------ model ops


def _model_inputs(op: Op, frame: Frame) -> list[tuple[str, Any]]:
    return [(name, frame.get(name, op)) for name in op.operands]


def _system(interp: Interpreter, op: Op, small: bool) -> str:
    proc = _enclosing_proc(interp, op)
    ctx = select_context(interp.module, proc, op, interp.resource_path, small=small)
    return ctx.render()


def _enclosing_proc(interp: Interpreter, op: Op) -> Op | None:
    for proc in interp.module.procs():
        if any(inner is op for inner in proc.walk()):
            return proc
    return None


def _result_type(op: Op):
    from skvm.ir import types as T

    return op.results[0].type if op.results else T.TEXT


def _model_failure(op: Op, exc: Exception, record=None) -> OpFailure:
    if isinstance(exc, ModelError):
        reason = exc.diagnostics[0].message
    else:
        reason = str(exc)
    failure = OpFailure(op, reason)
    failure.record = record  # type: ignore[attr-defined]
    return failure


@handler("llm.step")
def _step(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    client = interp.client
    small = agent.choose_protocol(client.model_id, interp.options.protocol) == "act"
    request = agent.StepRequest(
        instruction=op.attr("prompt"),
        system=_system(interp, op, small),
        inputs=_model_inputs(op, frame),
        result_type=_result_type(op),
        max_turns=interp.options.max_steps or op.attr("max_turns"),
        max_tokens=op.attr("max_tokens"),
        tools=op.attr("tools"),
    )
    try:
        record = agent.run_step(
            client, interp.agent_tools(), request, interp.budget,
            protocol=interp.options.protocol, cancelled=token.event,
        )
    except (agent.StepFailed, ModelError) as exc:
        if token.is_set():
            raise Cancelled() from None
        raise _model_failure(op, exc, getattr(exc, "record", None)) from None
    for reason in record.violations:
        from skvm.diagnostics import Diagnostic, Severity

        interp.warnings.append(
            Diagnostic(Severity.WARNING, f"the model's tool call was refused: {reason}", op.location)
        )
    return Outcome((record.value,) * len(op.results), record=record)


@handler("llm.gen", "llm.judge")
def _single(interp: Interpreter, op: Op, frame: Frame, token, op_id):
    client = interp.client
    small = agent.choose_protocol(client.model_id, interp.options.protocol) == "act"
    judge = op.name == "llm.judge"
    instruction = op.attr("question") if judge else op.attr("prompt")
    try:
        record = agent.run_single(
            client,
            _system(interp, op, small),
            instruction,
            _model_inputs(op, frame),
            _result_type(op),
            interp.budget,
            question=judge,
        )
    except (agent.StepFailed, ModelError) as exc:
        raise _model_failure(op, exc, getattr(exc, "record", None)) from None
    return Outcome((record.value,) * len(op.results), record=record)
