"""The ``legalize{target=…}`` transform: capability legalization.

For every model op and every capability it needs above what the target
profile reaches, apply the first applicable strategy of
:data:`~skvm.passes.transforms.legalize_strategies.STRATEGIES` for that
primitive and gap, then look again: a step needing ``L3`` on an ``L1`` target
is lowered twice. Each rewrite is recorded on the ops it produces
(``legalized = ["reason.arithmetic:L3->L2 compensation:worked-steps"]``) and
reported as a remark (``-Rpass=legalize``).

* A primitive the target did not measure is *unknown*, not L0: the
  requirement stays and a warning (once per primitive) and a remark (per op)
  say so.
* When some requirement of an op cannot be met by any strategy, the op is
  left exactly as it was and an error points at it (a warning with
  ``--allow-illegal``); the notes say why each strategy did not apply.
* The pass is idempotent: a legal op is never touched, so a second run
  changes nothing.

The contract with the front end (``commands``, ``script``, ``script_args``,
``caps``, ``evidence``) is described in ``docs/passes/legalize.md``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence

import attrs

from skvm.capabilities import level_name
from skvm.diagnostics import Diagnostic, Location, Severity, SkvmError
from skvm.ir import types as T
from skvm.ir.attributes import UNIT, Cap, SymbolRef
from skvm.ir.operation import Module, Op, Region, Value, replace_ops_deep
from skvm.passes.analysis.caps import MODEL_OPS, max_caps, op_caps, op_label
from skvm.passes.base import ModulePass, PassContext, PassResult
from skvm.passes.irutil import walk
from skvm.passes.transforms.legalize_strategies import (
    MULTIPLYING,
    Strategy,
    multiplying_labels,
    strategies_for,
)

PASS = "legalize"
#: How many splits / verification rewrites one op's lineage may go through: each
#: multiplies the model ops (and the prompt tokens), so past this the step is
#: better rewritten by a template, substituted, or reported.
MAX_MULTIPLY = 2
#: Rewrites allowed per original op before giving up. Each rewrite strictly lowers a
#: gap and at most 2**MAX_MULTIPLY model ops carry requirements, so this bound is
#: never reached by a sound table; it only guards against bugs.
MAX_REWRITES = (2**MAX_MULTIPLY) * 26 * 3 + 16
#: Primitives whose work is done by running the skill's commands (elimination).
COVERED_BY_COMMANDS = frozenset(
    {
        "gen.code.python", "gen.code.javascript", "gen.code.shell", "gen.code.sql",
        "tool.exec", "tool.call.format", "tool.call.batch", "follow.delegation",
    }
)
#: Result types a command's standard output can stand for.
_OUTPUT_TYPES = frozenset({"text", "any", "json"})
#: Characters that make a command line need a shell.
_SHELL_SYNTAX = re.compile(r"[|&;<>()$`\\*?\[\]{}~!#\n]|^\s*\w+=")
#: Attributes that belong to the front end's reading of the step, not to rewrites.
_ELIMINATION_ATTRS = ("commands", "script", "script_args")


class LegalizeFailure(Exception):
    """Some requirement of an op cannot be met (carries the diagnostic notes)."""

    def __init__(self, cap: Cap, target_level: int, notes: Sequence[str]):
        super().__init__(str(cap))
        self.cap = cap
        self.target_level = target_level
        self.notes = tuple(notes)


def prompt_key(op: Op) -> str:
    """The attribute holding an op's instruction (``question`` for llm.judge)."""
    return "question" if op.name == "llm.judge" else "prompt"


def prompt_of(op: Op) -> str:
    """The op's instruction text."""
    return op.attr(prompt_key(op)) or ""


class Namer:
    """Fresh SSA value names for one procedure."""

    def __init__(self, taken: set[str]):
        self.taken = taken

    def fresh(self, base: str) -> str:
        """``base`` if free, else ``base_1``, ``base_2``, …"""
        name, i = base, 0
        while name in self.taken:
            i += 1
            name = f"{base}_{i}"
        self.taken.add(name)
        return name


def _proc_names(proc: Op) -> set[str]:
    names: set[str] = set()
    for region in proc.regions:
        names.update(v.name for v in region.args)
    for op in walk((proc,)):
        names.update(v.name for v in op.results)
        for region in op.regions:
            names.update(v.name for v in region.args)
    return names


@attrs.define
class Rewriter:
    """Legalizes the model ops of one procedure against one target."""

    target: object  # skvm.targets.profile.TargetProfile
    namer: Namer
    #: resource path -> symbol, so eliminated commands name bundled scripts as @resources.
    resources: dict[str, str] = attrs.field(factory=dict)
    #: (primitive, op label, loc) of unknown requirements met (for remarks/warnings).
    unknown: list[tuple[Cap, Op]] = attrs.field(factory=list)
    remarks: list[tuple[str, Location | None]] = attrs.field(factory=list)
    applied: list[str] = attrs.field(factory=list)

    # -- applicability ---------------------------------------------------------------
    def reaches(self, primitive: str, level: int) -> bool:
        """Whether the target is known to reach ``primitive`` at ``level``."""
        have = self.target.level(primitive)
        return have is not None and have >= level

    def why_not(self, strategy: Strategy, op: Op) -> str | None:
        """None when ``strategy`` applies to ``op``; else the reason it does not."""
        for prim, level in strategy.needs:
            if not self.reaches(prim, level):
                have = self.target.level(prim)
                shown = "unknown" if have is None else level_name(have)
                return f"{strategy.label} needs {prim}:L{level}, target has {shown}"
        mech = strategy.mechanism
        if mech in MULTIPLYING and _multiplied(op) >= MAX_MULTIPLY:
            return f"{strategy.label} would split the step more than {MAX_MULTIPLY} times"
        if mech == "eliminate" and not _has_commands(op):
            return f"{strategy.label} needs a 'commands' or 'script' attribute on the op"
        if mech == "check-schema":
            result = op.results[0] if op.results else None
            if result is None or result.type.name != "json" or not isinstance(result.type.param, str):
                return f"{strategy.label} needs a json<schema> result"
        if mech == "split" and op.name == "llm.judge" and not op.results:
            return f"{strategy.label} needs a result"
        return None

    # -- driver --------------------------------------------------------------------------
    def illegal(self, op: Op) -> list[tuple[Cap, int]]:
        """(cap, target level) for each known requirement above the target, catalog order."""
        needs = op_caps(op)
        if needs is None:
            return []
        if all(self._fits(c) for c in needs.caps):
            return []  # fast path: legal (or unknown) everywhere
        out = []
        for cap in needs.caps:
            have = self.target.level(cap.primitive)
            if have is None:
                continue
            if cap.level > have:
                out.append((cap, have))
        return out

    def _fits(self, cap: Cap) -> bool:
        return _fits(self.target, cap)

    def note_unknown(self, op: Op) -> None:
        """Record requirements on primitives the target did not measure."""
        needs = op_caps(op)
        if needs is None:
            return
        for cap in needs.caps:
            if self.target.level(cap.primitive) is None:
                self.unknown.append((cap, op))

    def legalize(self, op: Op, budget: list[int]) -> list[Op]:
        """The legal replacement of ``op`` (raises LegalizeFailure)."""
        if op.regions:
            return [op.with_regions([self.legalize_region(r, budget) for r in op.regions])]
        if op.name not in MODEL_OPS and op_caps(op) is None:
            return [op]
        pending = self.illegal(op)
        if not pending:
            return [op]
        cap, have = pending[0]
        budget[0] -= 1
        if budget[0] < 0:
            raise LegalizeFailure(cap, have, ["legalization did not converge (a bug in the table)"])
        reasons = []
        for strategy in strategies_for(cap.primitive, cap.level):
            reason = self.why_not(strategy, op)
            if reason is not None:
                reasons.append(reason)
                continue
            new_ops = self.apply(strategy, op, cap, have)
            out: list[Op] = []
            for new in new_ops:
                out.extend(self.legalize(new, budget))
            return out
        raise LegalizeFailure(cap, have, reasons or ["no strategy in the table"])

    def legalize_region(self, region: Region, budget: list[int]) -> Region:
        """Legalize every op of a region created by a rewrite."""
        out: list[Op] = []
        for op in region.ops:
            out.extend(self.legalize(op, budget))
        return region.with_ops(out)

    # -- rewrites ----------------------------------------------------------------------
    def apply(self, strategy: Strategy, op: Op, cap: Cap, have: int) -> list[Op]:
        """Apply ``strategy`` to close the gap of ``cap``; record and remark it."""
        to_level = 0 if strategy.kind != "compensation" else cap.level - 1
        record = f"{cap.primitive}:L{cap.level}->L{to_level} {strategy.label}"
        new_ops, detail = MECHANISM_TABLE[strategy.mechanism](self, strategy, op, cap, record)
        self.applied.append(strategy.kind)
        message = (
            f"{op_label(op)}: {cap.primitive}:L{cap.level} -> L{to_level} by {strategy.label}"
            f" (target {self.target.short_key} has {cap.primitive}:L{have}){detail}"
        )
        self.remarks.append((message, op.location))
        return new_ops


def _fits(target, cap: Cap) -> bool:
    """Whether ``target`` reaches ``cap`` or did not measure it (unknown is not illegal)."""
    have = target.level(cap.primitive)
    return have is None or have >= cap.level


def _multiplied(op: Op) -> int:
    """How many multiplying rewrites produced ``op`` (from its ``legalized`` records)."""
    labels = multiplying_labels()
    count = 0
    for record in op.attr("legalized", ()):
        parts = str(record).split(" ")
        if len(parts) > 1 and parts[1] in labels:
            count += 1
    return count


def _has_commands(op: Op) -> bool:
    commands = op.attr("commands")
    has_cmds = isinstance(commands, tuple) and any(isinstance(c, str) and c.strip() for c in commands)
    return has_cmds or isinstance(op.attr("script"), SymbolRef)


def _record(op: Op, record: str) -> tuple[str, ...]:
    return tuple(op.attr("legalized", ())) + (record,)


def _lowered(op: Op, cap: Cap) -> tuple[Cap, ...]:
    needs = op_caps(op)
    caps = [c for c in needs.caps if c.primitive != cap.primitive] + [Cap(cap.primitive, cap.level - 1)]
    return max_caps(caps)


def _build(name: str, op: Op, operands, results, attributes) -> Op:
    return Op.build(name, operands, results, attributes, (), op.loc, op.pos)


def _attrs_with(op: Op, **changes) -> dict:
    current = op.attributes.to_dict()
    for key, value in changes.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
    return current


def _retarget(op: Op, name: str) -> dict:
    """``op``'s attributes for an op of kind ``name`` (prompt vs question)."""
    current = op.attributes.to_dict()
    text = current.pop("question", None) if op.name == "llm.judge" else current.pop("prompt", None)
    current["question" if name == "llm.judge" else "prompt"] = text or ""
    return current


def _template(rw: Rewriter, s: Strategy, op: Op, cap: Cap, record: str):
    old = op.attr("template")
    text = s.text if not isinstance(old, str) or not old else old + "\n" + s.text
    caps = max_caps(list(_lowered(op, cap)) + [Cap(p, lvl) for p, lvl in s.needs])
    return [op.with_attrs(template=text, caps=caps, legalized=_record(op, record))], ""


def _split(rw: Rewriter, s: Strategy, op: Op, cap: Cap, record: str):
    caps = _lowered(op, cap)
    prompt = prompt_of(op)
    base = op.results[0].name if op.results else "step"
    mid = Value(rw.namer.fresh(f"{base}_part1"), T.TEXT)
    first_kind = "llm.gen" if op.name in ("llm.gen", "llm.judge") else "llm.step"
    first_attrs = _retarget(op, first_kind)
    first_attrs.update(prompt=s.text.format(prompt=prompt), caps=caps, legalized=_record(op, record))
    for key in _ELIMINATION_ATTRS:
        first_attrs.pop(key, None)
    first = _build(first_kind, op, op.operands, (mid,), first_attrs)
    second = _build(
        op.name,
        op,
        tuple(op.operands) + (mid.name,),
        op.results,
        _attrs_with(op, **{prompt_key(op): s.second.format(prompt=prompt)}, caps=caps,
                    legalized=_record(op, record)),
    )
    return [first, second], f", split into '%{mid.name}' and {op_label(second)}"


def _verify(rw: Rewriter, s: Strategy, op: Op, cap: Cap, record: str):
    caps = _lowered(op, cap)
    prompt = prompt_of(op)
    base = op.results[0].name if op.results else "step"
    ok = Value(rw.namer.fresh(f"{base}_ok"), T.BOOL)
    draft_results: tuple[Value, ...] = ()
    if op.results:
        draft_results = (Value(rw.namer.fresh(f"{base}_draft"), op.results[0].type),)
    draft = attrs.evolve(op, results=draft_results).with_attrs(caps=caps, legalized=_record(op, record))
    judge_operands = tuple(v.name for v in draft_results)
    subject = "the result" if draft_results else "the previous step"
    judge = _build(
        "llm.judge", op, judge_operands, (ok,),
        {"question": f"Check {subject}: does it hold that {s.text}? Answer yes or no.",
         "caps": (Cap("reason.logic", 1),), "legalized": (record + " (check)",)},
    )
    fix_results: tuple[Value, ...] = ()
    if op.results:
        fix_results = (Value(rw.namer.fresh(f"{base}_fixed"), op.results[0].type),)
    fix = _build(
        op.name, op, tuple(op.operands) + judge_operands, fix_results,
        _attrs_with(op, **{prompt_key(op): f"Repair {subject} so that {s.text}: {prompt}"},
                    caps=caps, legalized=_record(op, record + " (repair)")),
    )
    if fix_results:
        then = Region((_build("ctl.yield", op, judge_operands, (), {}),))
        other = Region((fix, _build("ctl.yield", op, (fix_results[0].name,), (), {})))
    else:
        then, other = Region(()), Region((fix,))
    branch = _build("ctl.if", op, (ok.name,), op.results, {})
    branch = branch.with_regions((then, other))
    return [draft, judge, branch], f", checked by '%{ok.name}' with a repair step"


def _check_schema(rw: Rewriter, s: Strategy, op: Op, cap: Cap, record: str):
    result = op.results[0]
    new = op.with_attrs(caps=_lowered(op, cap), legalized=_record(op, record))
    check = _build("check.schema", op, (result.name,), (), {"schema": result.type.param})
    return [new, check], f", checked by check.schema on '%{result.name}'"


def _substitute(rw: Rewriter, s: Strategy, op: Op, cap: Cap, record: str):
    needs = op_caps(op)
    caps = max_caps([c for c in needs.caps if c.primitive != cap.primitive]
                    + [Cap(p, lvl) for p, lvl in s.needs])
    uses_tools = any(p.startswith("tool.") for p, _ in s.needs)
    kind = "llm.step" if uses_tools and op.name == "llm.gen" else op.name
    attributes = _retarget(op, kind) if kind != op.name else op.attributes.to_dict()
    attributes["question" if kind == "llm.judge" else "prompt"] = s.text.format(prompt=prompt_of(op))
    attributes["caps"] = caps
    attributes["legalized"] = _record(op, record)
    if uses_tools and op.attr("tools") == ():
        attributes.pop("tools")  # the substitute needs tools: default tool set
    new = _build(kind, op, op.operands, op.results, attributes)
    shown = ", ".join(f"{p}:L{lvl}" for p, lvl in s.needs)
    return [new], f", now needs {shown}"


def _command_op(command: str, op: Op, results, record: str, resources: dict[str, str]) -> Op:
    words: list = []
    if not _SHELL_SYNTAX.search(command):
        try:
            words = shlex.split(command)
        except ValueError:
            words = []
    attributes: dict = {"legalized": (record,)}
    if words:
        # A bundled script named by its path becomes a reference to its resource.
        attributes["argv"] = tuple(
            SymbolRef(resources[w.removeprefix("./")]) if w.removeprefix("./") in resources else w
            for w in words
        )
    else:
        attributes.update(argv=(command,), shell=UNIT)
    return _build("tool.exec", op, (), results, attributes)


def _eliminate(rw: Rewriter, s: Strategy, op: Op, cap: Cap, record: str):
    needs = op_caps(op)
    covered = COVERED_BY_COMMANDS | {cap.primitive}
    remaining = max_caps([c for c in needs.caps if c.primitive not in covered])
    result = op.results[0] if op.results else None
    residual_needed = bool(remaining) or (result is not None and result.type.name not in _OUTPUT_TYPES)
    base = result.name if result is not None else "step"
    out_value: Value | None = None
    if residual_needed:
        out_value = Value(rw.namer.fresh(f"{base}_out"), T.TEXT)
    elif result is not None:
        out_value = result
    script = op.attr("script")
    commands = [c for c in op.attr("commands", ()) if isinstance(c, str) and c.strip()]
    deterministic: list[Op] = []
    if isinstance(script, SymbolRef):
        attributes = {"script": script, "legalized": (record,)}
        args = op.attr("script_args")
        if isinstance(args, tuple) and args:
            attributes["args"] = args
        results = (out_value,) if out_value is not None and not commands else ()
        deterministic.append(_build("tool.script", op, (), results, attributes))
    for i, command in enumerate(commands):
        last = i == len(commands) - 1
        results = (out_value,) if out_value is not None and last else ()
        deterministic.append(_command_op(command, op, results, record, rw.resources))
    what = ", ".join(
        ("@" + d.attr("script").name) if d.name == "tool.script" else " ".join(_argv_text(d))
        for d in deterministic
    )
    if not residual_needed:
        return deterministic, f", replaced by {len(deterministic)} deterministic op(s): {what}"
    attributes = _attrs_with(
        op,
        **{prompt_key(op): prompt_of(op) + "\n(The skill's commands were already run; their "
           "output is the last input.)"},
        caps=remaining or None,
        legalized=_record(op, record),
        commands=None, script=None, script_args=None,
    )
    residual = _build(op.name, op, tuple(op.operands) + (out_value.name,), op.results, attributes)
    return deterministic + [residual], (
        f", commands run deterministically ({what}); {op_label(residual)} keeps the rest"
    )


def _argv_text(op: Op) -> list[str]:
    return [("@" + a.name) if isinstance(a, SymbolRef) else str(a) for a in op.attr("argv", ())]


#: mechanism name -> rewrite(rewriter, strategy, op, cap, record) -> (ops, remark detail).
MECHANISM_TABLE: dict[str, Callable] = {
    "template": _template,
    "split": _split,
    "verify": _verify,
    "check-schema": _check_schema,
    "substitute": _substitute,
    "eliminate": _eliminate,
}


def _first_model_loc(module: Module) -> Location | None:
    for op in module.walk():
        if op.name in MODEL_OPS:
            return op.location
    first = module.body.ops[0] if module.body.ops else None
    return first.location if first is not None else None


def resolve_target(spec: str | None, module: Module):
    """Load the target profile named by ``spec``; a located error when there is none."""
    from skvm.targets.profile import builtin_targets, load_target

    if not spec:
        raise SkvmError(
            Diagnostic(
                Severity.ERROR,
                "legalize needs a target: pass --target=<model>@<harness> (or a profile .json), "
                "or legalize{target=…}",
                _first_model_loc(module),
                (Diagnostic(Severity.NOTE, "built-in targets: " + ", ".join(builtin_targets())),),
            )
        )
    return load_target(spec)


@attrs.frozen
class LegalizeOutcome:
    """What :func:`legalize_module` did."""

    module: Module
    #: strategy kind -> number of rewrites.
    counts: dict[str, int]
    illegal_ops: int
    unknown_caps: int


def legalize_module(module: Module, target, ctx: PassContext) -> LegalizeOutcome:
    """Legalize every procedure of ``module`` for ``target``; report through ``ctx``."""
    engine = ctx.diagnostics
    counts: dict[str, int] = {}
    illegal_ops = 0
    warned: set[str] = set()
    unknown_total = 0
    resources = {
        r.attr("path"): r.sym_name for r in module.resources() if isinstance(r.attr("path"), str)
    }

    def legalize_proc(proc: Op) -> Op:
        nonlocal illegal_ops, unknown_total
        # The procedure's names are collected on the first rewrite (most
        # procedures need none).
        namer: Namer | None = None

        def fn(op: Op) -> Op | list[Op]:
            nonlocal illegal_ops, unknown_total, namer
            if op.name not in MODEL_OPS and not op.has_attr("caps"):
                return op
            needs = op_caps(op)
            if needs is None:
                return op
            for cap in needs.caps:
                if target.level(cap.primitive) is not None:
                    continue
                unknown_total += 1
                engine.remark(
                    PASS,
                    f"{op_label(op)}: {cap} left as is: target {target.short_key} did not "
                    f"measure {cap.primitive} (unknown, not L0)",
                    op.location,
                )
                if cap.primitive not in warned:
                    warned.add(cap.primitive)
                    engine.warning(
                        f"target {target.short_key} did not measure '{cap.primitive}': "
                        f"requirements on it are unknown and left as they are",
                        op.location,
                    )
            if all(_fits(target, cap) for cap in needs.caps):
                return op
            if namer is None:
                namer = Namer(_proc_names(proc))
            rw = Rewriter(target, namer, resources)
            try:
                out = rw.legalize(op, [MAX_REWRITES])
            except LegalizeFailure as failure:
                illegal_ops += 1
                report = engine.warning if ctx.allow_illegal else engine.error
                needed = op_caps(op).level(failure.cap.primitive) or failure.cap.level
                gap = ""
                if needed != failure.cap.level:
                    gap = f" (no strategy applies to the gap L{failure.cap.level} -> L{failure.cap.level - 1})"
                report(
                    f"cannot legalize {op_label(op)} for target {target.short_key}: needs "
                    f"{failure.cap.primitive}:L{needed}, target has "
                    f"{failure.cap.primitive}:L{failure.target_level}{gap}",
                    op.location,
                    [Diagnostic(Severity.NOTE, n, op.location) for n in failure.notes],
                )
                return op
            for message, loc in rw.remarks:
                engine.remark(PASS, message, loc)
            for kind in rw.applied:
                counts[kind] = counts.get(kind, 0) + 1
            return out

        return proc.with_regions([replace_ops_deep(r, fn) for r in proc.regions])

    new_ops = [legalize_proc(op) if op.name == "skill.proc" else op for op in module.body.ops]
    outcome = LegalizeOutcome(module.with_ops(new_ops), counts, illegal_ops, unknown_total)
    _add_stats(ctx, outcome)
    return outcome


def _add_stats(ctx: PassContext, outcome: LegalizeOutcome) -> None:
    """Add ``--stats`` counters when the driver collects them."""
    found = {f"ops-legalized.{kind}": n for kind, n in outcome.counts.items()}
    found["ops-illegal"] = outcome.illegal_ops
    found["caps-unknown"] = outcome.unknown_caps
    ctx.add_stats(found, prefix="legalize")


@attrs.frozen
class Legalize(ModulePass):
    """Rewrites model steps so every capability they need is within the target's reach."""

    name = "legalize"
    summary = "rewrite model steps to fit a target's capability profile (compensate/substitute/eliminate)"

    #: Target spec (``<model>@<harness>`` or a profile path); default: ``--target``.
    target: str | None = None

    def run(self, module: Module, am, ctx: PassContext) -> PassResult:
        profile = resolve_target(self.target or ctx.target, module)
        outcome = legalize_module(module, profile, ctx)
        if outcome.module is module:
            return self.unchanged(module)
        return self.changed(outcome.module)
