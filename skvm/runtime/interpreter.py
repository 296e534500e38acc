"""The SkIR interpreter: runs a procedure of a module, op by op.

Each op name has a handler in :data:`HANDLERS` (see
``skvm/runtime/handlers.py``); regions run recursively in frames that chain
to their parent (values are SSA names; a loop iteration or a parallel branch
gets its own frame). Every op's results are coerced and checked against
their declared types at the op boundary (``json<schema>`` with
``jsonschema``), every execution is recorded in the trace store, and a
listener sees start/end events (the progress display, ``--trace``).

Concurrency: ``ctl.map`` and ``ctl.parallel`` run their iterations/branches
on a bounded thread pool (``max_width``, else :attr:`RunOptions.max_width`).
When one fails, its siblings are cancelled (pending ones never start;
running ones stop at their next op boundary) unless the op has
``collect_errors``; results join in declaration order.

Failures are :class:`OpFailure` (a :class:`~skvm.diagnostics.SkvmError`
located at the failing op), never tracebacks.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from skvm.diagnostics import Diagnostic, Location, Severity, SkvmError
from skvm.ir.attributes import SymbolRef, ValueRef
from skvm.ir.operation import Module, Op, Region
from skvm.runtime import sandbox, values
from skvm.runtime.agent import AgentTools, RunBudget
from skvm.runtime.traces import TraceStore

#: Op names that are not executed (context, declarations); they cost nothing.
PASSIVE_OPS = frozenset(
    {"ctx.text", "ctx.rule", "ctx.example", "ctx.ref", "skill.meta", "skill.resource",
     "env.require", "env.bind"}
)
#: Where bundled files are staged inside the work directory.
STAGE_DIR = ".skvm/skill"
DEFAULT_MAX_WIDTH = 8


class OpFailure(SkvmError):
    """An op failed; the diagnostic points at the op."""

    def __init__(self, op: Op, reason: str, notes: tuple[Diagnostic, ...] = ()):
        super().__init__(Diagnostic(Severity.ERROR, f"{op.name} failed: {reason}", op.location, notes))
        self.op = op
        self.reason = reason


class Cancelled(Exception):
    """The op's group was cancelled because a sibling failed."""


class _Return(Exception):
    def __init__(self, values_: tuple[Any, ...]):
        super().__init__()
        self.values = values_


@attrs.define
class CancelToken:
    """Set when this branch (or any enclosing one) must stop."""

    parent: CancelToken | None = None
    event: threading.Event = attrs.field(factory=threading.Event)

    def is_set(self) -> bool:
        """Whether this token or an ancestor was cancelled."""
        token: CancelToken | None = self
        while token is not None:
            if token.event.is_set():
                return True
            token = token.parent
        return False

    def child(self) -> CancelToken:
        """A token cancelled with this one, and cancellable by itself."""
        return CancelToken(self)


class Frame:
    """Values visible in a region: local definitions, then the parent frame's."""

    def __init__(self, parent: Frame | None = None):
        self.parent = parent
        self.values: dict[str, Any] = {}

    def get(self, name: str, op: Op) -> Any:
        """The value named ``name`` (an OpFailure when it is not defined)."""
        frame: Frame | None = self
        while frame is not None:
            if name in frame.values:
                return frame.values[name]
            frame = frame.parent
        raise OpFailure(op, f"value %{name} is not defined here")

    def set(self, name: str, value: Any) -> None:
        """Define ``name`` in this frame."""
        self.values[name] = value


@attrs.frozen
class OpEvent:
    """A start or end of one op execution, for progress displays."""

    kind: str  # "start" | "end"
    op_id: str
    op_name: str
    location: str | None
    outcome: str = ""
    elapsed_s: float = 0.0
    tokens: int = 0
    detail: str = ""


@attrs.frozen
class Outcome:
    """A handler's result when it has more to say than its values."""

    values: tuple[Any, ...]
    outcome: str = "ok"
    record: Any = None  # an agent StepRecord for model ops


@attrs.define
class RunOptions:
    """How to run: work directory, model, budgets, permissions."""

    workdir: Path = attrs.field(converter=Path)
    skill_root: Path | None = None
    model: str | None = None
    max_steps: int | None = None
    timeout_s: float | None = None
    budget_tokens: int | None = None
    allow_env: tuple[str, ...] = ()
    allow_network: bool = False
    protocol: str = "auto"
    command_timeout_s: float = 60.0
    max_width: int = DEFAULT_MAX_WIDTH
    trace_store: Path | None = None  # None: <workdir>/.skvm/traces.sqlite
    record_traces: bool = True
    # Worker processes for concurrent model calls (skvm.runtime.model_workers);
    # None: $SKVM_MODEL_WORKERS or the default, 0: every call in this process.
    model_workers: int | None = None


@attrs.define
class RunResult:
    """What a run produced."""

    run_id: str | None
    values: tuple[Any, ...]
    ops: int
    tokens_in: int
    tokens_out: int
    elapsed_s: float
    warnings: list[Diagnostic]


Listener = Callable[[OpEvent], None]


class Interpreter:
    """Runs procedures of one module with one set of options."""

    def __init__(
        self,
        module: Module,
        options: RunOptions,
        *,
        client=None,
        listener: Listener | None = None,
    ):
        self.module = module
        self.options = options
        self.workdir = options.workdir.resolve()
        self._client = client
        self._client_lock = threading.Lock()
        # Without a listener no events are built (two objects per op saved).
        self._listening = listener is not None
        self.listener = listener or (lambda event: None)
        self.warnings: list[Diagnostic] = []
        self.symbols = module.symbols()
        self.requirements = [op for op in module.ops if op.name == "env.require"]
        self.policy = self._policy()
        self.budget = RunBudget(options.budget_tokens)
        self.store: TraceStore | None = None
        self.run_id: str | None = None
        self.tokens_in = 0
        self.tokens_out = 0
        self.op_count = 0
        self._count_lock = threading.Lock()
        self.staged: dict[str, str] = {}
        # The module does not change during a run: look these up once.
        self.resources = module.resources()
        from skvm.runtime.handlers import HANDLERS

        self.handlers = HANDLERS

    # ----------------------------------------------------------------- set-up
    def _policy(self) -> sandbox.SandboxPolicy:
        required_env = {
            op.attr("package") for op in self.requirements if op.attr("manager").name == "env"
        }
        allowed = []
        for name in self.options.allow_env:
            if name in required_env:
                allowed.append(name)
            else:
                self.warnings.append(
                    Diagnostic(
                        Severity.WARNING,
                        f"--allow-env {name} ignored: the skill does not require it (env.require env)",
                    )
                )
        meta = self.module.meta
        allowed_tools = meta.attr("allowed_tools") if meta is not None else None
        return sandbox.SandboxPolicy(
            workdir=self.workdir,
            timeout_s=self.options.command_timeout_s,
            allow_network=self.options.allow_network,
            allowed_env=frozenset(allowed),
            allowed_tools=allowed_tools,
        )

    @property
    def client(self):
        """The model client, created on the first model op (litellm loads then)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    from skvm.runtime.models import ModelClient

                    model = self.options.model or os.environ.get("SKVM_MODEL") or None
                    self._client = ModelClient(model=model, workers=self.options.model_workers)
        return self._client

    @property
    def model_id(self) -> str:
        """The model id model ops use (without creating the client)."""
        if self._client is not None:
            return self._client.model_id
        from skvm.runtime.models import DEFAULT_MODEL

        return self.options.model or os.environ.get("SKVM_MODEL") or DEFAULT_MODEL

    def agent_tools(self) -> AgentTools:
        """The sandboxed tools a model step may call."""
        return AgentTools(self.policy)

    def _stage_resources(self) -> None:
        """Copy bundled files into ``<workdir>/.skvm/skill`` so commands can use them."""
        root = self.options.skill_root
        for op in self.resources:
            rel = op.attr("path")
            staged = f"{STAGE_DIR}/{rel}"
            self.staged[op.sym_name] = staged
            if root is None or op.has_attr("missing"):
                continue
            source = Path(root) / rel
            if not source.is_file():
                continue
            # A command of an earlier run may have left links in the staging area:
            # its directories must resolve inside the work directory (else
            # SandboxViolation), and a link in the file's place is replaced, not
            # written through.
            parent = sandbox.resolve_path(self.policy, Path(staged).parent)
            parent.mkdir(parents=True, exist_ok=True)
            target = parent / Path(staged).name
            if target.is_symlink():
                target.unlink()
            shutil.copyfile(source, target)
            if op.attr("kind") is not None and op.attr("kind").name == "script":
                target.chmod(0o755)

    def resource_path(self, name: str) -> str | None:
        """The staged (work-directory-relative) path of resource ``@name``."""
        return self.staged.get(name)

    def rewrite_resource_paths(self, text: str) -> str:
        """Point mentions of bundled files (``scripts/x.py``) at their staged copies.

        Only when the work directory has no file of that name itself.
        """
        for op in self.resources:
            rel = op.attr("path")
            staged = self.staged.get(op.sym_name)
            if staged is None or rel not in text or (self.workdir / rel).exists():
                continue
            text = re.sub(rf"(?<![\w./-]){re.escape(rel)}(?![\w-])", staged, text)
        return text

    def check_requirements(self) -> None:
        """Warn about missing binaries and variables the skill requires (never fatal)."""
        for op in self.requirements:
            manager, package = op.attr("manager").name, op.attr("package")
            if op.has_attr("optional"):
                continue
            missing = (manager == "bin" and shutil.which(package) is None) or (
                manager == "env" and package not in os.environ
            )
            if missing:
                what = "binary" if manager == "bin" else "environment variable"
                self.warnings.append(
                    Diagnostic(
                        Severity.WARNING,
                        f"required {what} '{package}' is missing; steps that use it will fail",
                        op.location,
                    )
                )

    def missing_binary_note(self, name: str) -> tuple[Diagnostic, ...]:
        """A note pointing at the env.require of a binary a command could not find."""
        for op in self.requirements:
            if op.attr("package") == name:
                return (Diagnostic(Severity.NOTE, f"the skill requires '{name}' here", op.location),)
        return ()

    # ------------------------------------------------------------------- run
    def run(self, proc: str = "main", inputs: dict[str, Any] | None = None) -> RunResult:
        """Run procedure ``@proc`` with ``inputs`` (parameter name -> value)."""
        started = time.perf_counter()
        if self.options.timeout_s is not None:
            self.budget.deadline = time.monotonic() + self.options.timeout_s
        target = self.symbols.get(proc)
        if target is None or target.name != "skill.proc":
            raise SkvmError(Diagnostic(Severity.ERROR, f"the skill has no procedure @{proc}"))
        args = self._bind_inputs(target, inputs or {})
        if self.workdir.exists() and not self.workdir.is_dir():
            raise SkvmError(Diagnostic(Severity.ERROR, f"work directory '{self.workdir}' is not a directory"))
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._stage_resources()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            where = f" ('{exc.filename}')" if exc.filename and str(exc.filename) != str(self.workdir) else ""
            raise SkvmError(
                Diagnostic(Severity.ERROR, f"cannot use work directory '{self.workdir}': {reason}{where}")
            ) from None
        self.check_requirements()
        if self._concurrent_model_work():
            # The workers' zygote imports litellm on another core meanwhile, so the
            # first group of concurrent model calls can already use them.
            start = getattr(self.client, "start_workers", None)
            if start is not None:
                start()
        if self.options.record_traces:
            path = self.options.trace_store
            if path is None:
                # Checked like any path in the work directory: a command of an earlier
                # run may have left .skvm as a link out of it.
                path = sandbox.resolve_path(self.policy, Path(".skvm") / "traces.sqlite")
            self.store = TraceStore(path)
            self.run_id = self.store.start_run(self.module.sym_name, proc, None)
        status, error = "ok", None
        try:
            result = self.call_proc(target, args, CancelToken(), f"@{proc}")
        except SkvmError as exc:
            status, error = "failed", exc.diagnostics[0].message
            raise
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted"
            raise
        finally:
            if self.store is not None and self.run_id is not None:
                self.store.finish_run(self.run_id, status, error, self.tokens_in, self.tokens_out)
                self.store.close()
        return RunResult(
            self.run_id,
            result,
            self.op_count,
            self.tokens_in,
            self.tokens_out,
            time.perf_counter() - started,
            self.warnings,
        )

    def _concurrent_model_work(self) -> bool:
        """Whether a ctl.parallel or ctl.map of the module makes model calls."""
        for op in self.module.walk():
            if op.name in ("ctl.parallel", "ctl.map") and any(
                inner.name.startswith("llm.") for inner in op.walk()
            ):
                return True
        return False

    def _bind_inputs(self, proc: Op, inputs: dict[str, Any]) -> list[Any]:
        args = []
        unknown = sorted(set(inputs) - {p.name for p in proc.params})
        if unknown:
            raise SkvmError(
                Diagnostic(
                    Severity.ERROR,
                    f"@{proc.sym_name} has no parameter %{unknown[0]}"
                    f" (parameters: {', '.join('%' + p.name for p in proc.params) or 'none'})",
                )
            )
        for param in proc.params:
            if param.name in inputs:
                value = values.coerce(inputs[param.name], param.type)
            elif param.name == "task":
                value = ""  # a skill run without --task gets an empty task
            else:
                raise SkvmError(
                    Diagnostic(
                        Severity.ERROR,
                        f"@{proc.sym_name} needs input %{param.name}: {param.type}"
                        f" (pass --input {param.name}=VALUE)",
                        proc.location,
                    )
                )
            try:
                values.check(value, param.type)
            except values.TypeMismatch as exc:
                raise SkvmError(
                    Diagnostic(Severity.ERROR, f"input %{param.name}: {exc}", proc.location)
                ) from None
            args.append(value)
        return args

    def call_proc(self, proc: Op, args: list[Any], token: CancelToken, op_id: str) -> tuple:
        """Run a procedure's body with ``args`` bound to its parameters."""
        frame = Frame()
        for param, value in zip(proc.params, args):
            frame.set(param.name, value)
        try:
            self.run_region(proc.body, frame, token, op_id)
        except _Return as ret:
            results = ret.values
        else:
            results = ()
        declared = proc.result_types
        if declared and len(results) != len(declared):
            raise SkvmError.at(
                proc.location, f"@{proc.sym_name} returned {len(results)} value(s), expected {len(declared)}"
            )
        checked = []
        for value, t in zip(results, declared):
            try:
                checked.append(values.coerce_and_check(value, t))
            except values.TypeMismatch as exc:
                raise SkvmError.at(proc.location, f"@{proc.sym_name} result {exc}") from None
        return tuple(checked) if declared else tuple(results)

    def run_region(self, region: Region, frame: Frame, token: CancelToken, prefix: str) -> tuple | None:
        """Run a region's ops; return the values of its ``ctl.yield`` (None without one)."""
        for index, op in enumerate(region.ops):
            if op.name == "ctl.yield":
                return tuple(frame.get(name, op) for name in op.operands)
            if op.name == "ctl.return":
                raise _Return(tuple(frame.get(name, op) for name in op.operands))
            if op.name in PASSIVE_OPS:
                continue
            self.exec_op(op, frame, token, f"{prefix}/{index}")
        return None

    # ------------------------------------------------------------------- ops
    def exec_op(self, op: Op, frame: Frame, token: CancelToken, op_id: str) -> None:
        """Execute one op: handler, type checks, frame update, trace, events."""
        if token.is_set():
            raise Cancelled()
        handler = self.handlers.get(op.name)
        if handler is None:
            raise OpFailure(op, "the VM has no handler for this op")
        location = str(op.location) if op.location else None
        inputs = [frame.get(name, op) for name in dict.fromkeys(op.uses())]
        if self._listening:
            self.listener(OpEvent("start", op_id, op.name, location))
        started_wall = time.time()
        start = time.perf_counter()
        record = None
        outcome = "ok"
        error: str | None = None
        results: tuple[Any, ...] = ()
        try:
            out = handler(self, op, frame, token, op_id)
            if isinstance(out, Outcome):
                results, outcome, record = out.values, out.outcome, out.record
            else:
                results = tuple(out)
            results = self._check_results(op, results)
        except Cancelled:
            outcome, error = "cancelled", "cancelled (a sibling failed)"
            raise
        except OpFailure as exc:
            outcome, error = "failed", exc.reason
            record = getattr(exc, "record", None) or record
            raise
        except SkvmError as exc:
            outcome, error = "failed", exc.diagnostics[0].message
            raise
        except _Return:
            raise
        finally:
            elapsed = time.perf_counter() - start
            tokens_in = record.tokens_in if record is not None else 0
            tokens_out = record.tokens_out if record is not None else 0
            with self._count_lock:
                self.op_count += 1
                self.tokens_in += tokens_in
                self.tokens_out += tokens_out
            if self.store is not None and self.run_id is not None:
                self.store.record_op(
                    self.run_id,
                    op_id=op_id,
                    op_name=op.name,
                    location=location,
                    # Built when the store commits the batch.
                    inputs=lambda: [values.preview(v, 200) for v in inputs],
                    inputs_hash=lambda: values.digest(inputs),
                    result=(lambda: values.preview(results[0], 400)) if results else None,
                    outcome=outcome,
                    error=error,
                    tokens_in=tokens_in,
                    tokens_out=tokens_out,
                    latency_s=elapsed,
                    started=started_wall,
                    messages=record.messages if record is not None else None,
                    tool_calls=record.tool_calls if record is not None else None,
                )
            if self._listening:
                self.listener(
                    OpEvent("end", op_id, op.name, location, outcome, elapsed, tokens_in + tokens_out, error or "")
                )
        for value, result in zip(results, op.results):
            frame.set(result.name, value)

    def _check_results(self, op: Op, results: tuple[Any, ...]) -> tuple[Any, ...]:
        if len(results) < len(op.results):
            raise OpFailure(op, f"produced {len(results)} value(s), expected {len(op.results)}")
        checked = []
        for value, result in zip(results, op.results):
            if op.has_attr("collect_errors") and (value is None or isinstance(value, list)):
                # Failed branches/iterations yield None; check only the others.
                checked.append(self._check_collected(op, value, result))
                continue
            try:
                checked.append(values.coerce_and_check(value, result.type))
            except values.TypeMismatch as exc:
                raise OpFailure(op, f"result %{result.name} {exc}") from None
        return tuple(checked)

    def _check_collected(self, op: Op, value: Any, result) -> Any:
        from skvm.ir import types as T

        if value is None:
            return None
        element = T.element_type(result.type)
        out = []
        for index, item in enumerate(value):
            try:
                out.append(None if item is None else values.coerce_and_check(item, element))
            except values.TypeMismatch as exc:
                raise OpFailure(op, f"result %{result.name} element {index}: {exc}") from None
        return out

    # ------------------------------------------------------------ argv helpers
    def argv(self, op: Op, items, frame: Frame) -> list[str]:
        """Materialise an argv attribute: strings, @resources and %values."""
        out = []
        for item in items:
            if isinstance(item, SymbolRef):
                path = self.resource_path(item.name)
                if path is None:
                    raise OpFailure(op, f"@{item.name} is not a bundled resource")
                out.append(path)
            elif isinstance(item, ValueRef):
                out.append(values.to_text(frame.get(item.name, op)))
            else:
                out.append(self.rewrite_resource_paths(str(item)))
        return out

    def command_policy(self) -> sandbox.SandboxPolicy:
        """The sandbox policy for the next command (timeout capped by the run deadline)."""
        deadline = self.budget.deadline
        if deadline is None:
            return self.policy
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SkvmError(Diagnostic(Severity.ERROR, "time budget exhausted (--timeout)"))
        if remaining >= self.policy.timeout_s:
            return self.policy
        return attrs.evolve(self.policy, timeout_s=max(0.1, remaining))


def location_text(loc: Location | None) -> str:
    """A location as text, or ``?`` when unknown."""
    return str(loc) if loc is not None else "?"
