"""Check that a SkIR module is well formed, reporting every problem found.

What is checked:

* op kinds are registered (unless unregistered ops are allowed), with the
  right number of operands, results and regions, their required attributes,
  and attribute values of the right kind;
* types are well formed; capabilities name a primitive of the catalog at a
  level from L0 to L3;
* values: each name is defined once per procedure, before it is used, and is
  used only where it is in scope (regions see enclosing values; procedures
  see only their parameters); operand types fit where the op says;
* symbols: defined once; every ``@ref`` resolves (resources for
  ``ctx.ref``/``tool.script``, procedures for ``ctl.call``);
* structure: terminators last in their region, ``ctl.yield`` only inside a
  control-flow region, ``ctl.return`` only in a procedure and matching its
  result types, module-level ops only at module level and executable ops
  only inside procedures.
"""

from __future__ import annotations

import sys

from skvm.capabilities import is_primitive, suggest
from skvm.diagnostics import Diagnostic, Location, Severity, SkvmError
from skvm.ir.attributes import Cap, DictAttr, Keyword, SymbolRef, TypeAttr, UnitAttr, ValueRef
from skvm.ir.dialects import COMMON_ATTR_CHECKS
from skvm.ir.operation import Module, Op, Region, Trait, VerifyContext
from skvm.ir.types import Type, is_assignable, validate_type

#: Attribute values with nothing in them to check: scalars, the unit
#: attribute and keywords (see _verify_nested). Exact types: the hot path.
_NOTHING_TO_CHECK = frozenset({str, int, float, bool, UnitAttr, Keyword})
#: Ops whose regions may end in ctl.yield.
_YIELDING_PARENTS = frozenset(
    {"ctl.if", "ctl.for_each", "ctl.map", "ctl.parallel", "jit.solid", "env.if"}
)
#: Marks a scope entry that did not exist before a region defined it.
_ABSENT = object()
#: Ops (besides context and module ops) allowed at module level.
_MODULE_LEVEL_ALLOWED = frozenset({"env.require", "env.bind", "env.if"})
#: Symbol kinds expected by the attribute that references them.
_SYMBOL_KIND = {
    # ctx.ref names a bundled file, or anchors a procedure in the context stream.
    ("ctx.ref", "resource"): ("skill.resource", "skill.proc"),
    ("tool.script", "script"): ("skill.resource",),
    ("tool.read", "resource"): ("skill.resource",),
    ("llm.step", "script"): ("skill.resource",),
    ("ctl.call", "callee"): ("skill.proc",),
}


def _bounds(spec: int | tuple[int, int | None]) -> tuple[int, int]:
    """A count spec as inclusive (low, high) bounds, unbounded as ``sys.maxsize``."""
    if isinstance(spec, int):
        return spec, spec
    low, high = spec
    return low, sys.maxsize if high is None else high


def _count_text(spec) -> str:
    if isinstance(spec, int):
        return str(spec)
    low, high = spec
    if high is None:
        return f"at least {low}"
    if low == high:
        return str(low)
    return f"{low} to {high}"


class _OpSpec:
    """The declarative part of an op class, resolved once for the verifier.

    Op classes carry their definition as class attributes (flag enums, count
    specs, two check tables); reading and combining those for every op was
    most of the verifier's time, so each class's answers are computed once.
    """

    __slots__ = (
        "allowed_at_module_level",
        "attr_table",
        "has_hook",
        "module_level_only",
        "operands",
        "regions",
        "registered",
        "required_attrs",
        "required_count",
        "results",
        "terminator",
    )

    def __init__(self, cls: type[Op]):
        self.registered = cls.registered
        self.operands = _bounds(cls.operand_count)
        self.results = _bounds(cls.result_count)
        self.regions = _bounds(cls.region_count)
        self.required_attrs = cls.required_attrs
        # The op's own checker wins over the common provenance one.
        checks = dict(COMMON_ATTR_CHECKS)
        checks.update((key, check) for key, check in cls.attr_checks.items() if check)
        # key -> (its checker or None, whether it is required): what the one
        # pass over an op's attributes needs to know about a key, in one lookup.
        self.attr_table = {key: (check, False) for key, check in checks.items()}
        for key in self.required_attrs:
            self.attr_table[key] = (checks.get(key), True)
        self.required_count = len(set(self.required_attrs))
        self.allowed_at_module_level = bool(cls.traits & (Trait.MODULE_LEVEL | Trait.CONTEXT))
        self.module_level_only = bool(cls.traits & Trait.MODULE_LEVEL)
        self.terminator = bool(cls.traits & Trait.TERMINATOR)
        self.has_hook = cls.verify_op is not Op.verify_op


#: op class -> its resolved definition (op classes are defined once per process).
_SPECS: dict[type, _OpSpec] = {}


def _spec_of(cls: type[Op]) -> _OpSpec:
    spec = _SPECS.get(cls)
    if spec is None:
        spec = _SPECS[cls] = _OpSpec(cls)
    return spec


class Verifier:
    """Walks a module once and collects diagnostics."""

    def __init__(self, module: Module, allow_unregistered: bool = False):
        self.module = module
        self.allow_unregistered = allow_unregistered
        self.diagnostics: list[Diagnostic] = []
        self.ctx = VerifyContext(module, self._report)
        self.symbols: dict[str, Op] = {}
        #: ids of ops whose own checks (shape, attributes, symbol references)
        #: are known to pass; see :func:`verify_changed`.
        self.own_known_good: frozenset[int] = frozenset()
        #: (name, previous type or _ABSENT) for every value put in scope, so
        #: that leaving a region can undo its definitions; see _verify_op.
        self.scope_log: list[tuple[str, object]] = []

    # ---- reporting ---------------------------------------------------------------
    def _report(self, op: Op | None, message: str) -> None:
        loc = op.location if op is not None else None
        self.diagnostics.append(Diagnostic(Severity.ERROR, message, loc))

    def error(self, op: Op | None, message: str) -> None:
        """Report an error about ``op``."""
        self._report(op, message)

    # ---- entry -----------------------------------------------------------------------
    def run(
        self, known_good: frozenset[int] = frozenset(), own_known_good: frozenset[int] = frozenset()
    ) -> list[Diagnostic]:
        """Verify the module; return every diagnostic.

        Top-level ops whose ``id`` is in ``known_good`` are not re-verified;
        ops whose ``id`` is in ``own_known_good`` skip the checks that
        depend on the op alone and the module's symbols (see
        :func:`verify_changed`).
        """
        self.own_known_good = own_known_good
        self._collect_symbols()
        for op in self.module.body.ops:
            if id(op) in known_good:
                continue
            self._verify_module_level(op)
        return self.diagnostics

    def _collect_symbols(self) -> None:
        for op in self.module.body.ops:
            name = op.attr("sym_name")
            if not isinstance(name, str):
                continue
            if name in self.symbols:
                self.error(op, f"symbol @{name} is defined twice")
                continue
            self.symbols[name] = op

    def _verify_module_level(self, op: Op) -> None:
        # Each top-level op starts a new scope: nothing before it is undone.
        self.scope_log.clear()
        spec = _spec_of(type(op))
        if not (
            spec.allowed_at_module_level or op.name in _MODULE_LEVEL_ALLOWED or not spec.registered
        ):
            self.error(op, f"'{op.name}' must be inside a procedure, not at skill level")
        if op.name == "skill.proc":
            self._verify_proc(op, spec)
            return
        self._verify_op(op, spec, scope={}, defined=set(), parent=None, in_proc=None)

    def _verify_proc(self, proc: Op, spec: _OpSpec) -> None:
        if id(proc) not in self.own_known_good:
            self._verify_own(proc, spec)
        if len(proc.regions) != 1:
            return
        body = proc.regions[0]
        scope: dict[str, Type] = {}
        defined: set[str] = set()
        for arg in body.args:
            self._define(proc, arg.name, arg.type, scope, defined)
        self._verify_region(body, scope, defined, parent=proc, in_proc=proc)
        result_types = tuple(t.type for t in proc.attr("result_types", ()) if isinstance(t, TypeAttr))
        last = body.ops[-1] if body.ops else None
        if result_types and (last is None or last.name != "ctl.return"):
            self.error(proc, f"procedure @{proc.sym_name} must end with ctl.return")

    # ---- regions and values ----------------------------------------------------------
    def _define(self, op: Op, name: str, t: Type, scope: dict, defined: set) -> None:
        problem = validate_type(t)
        if problem:
            self.error(op, f"bad type of %{name}: {problem}")
        if name in defined:
            self.error(op, f"value %{name} is defined more than once")
        defined.add(name)
        self.scope_log.append((name, scope.get(name, _ABSENT)))
        scope[name] = t

    def _leave_region(self, scope: dict, mark: int) -> None:
        """Undo the scope changes logged since ``mark`` (the region's own values)."""
        log = self.scope_log
        while len(log) > mark:
            name, previous = log.pop()
            if previous is _ABSENT:
                del scope[name]
            else:
                scope[name] = previous

    def _verify_region(
        self, region: Region, scope: dict, defined: set, parent: Op, in_proc: Op | None
    ) -> None:
        last = len(region.ops) - 1
        specs = _SPECS
        for index, op in enumerate(region.ops):
            spec = specs.get(type(op)) or _spec_of(type(op))  # the lookup inline: one op at a time
            if spec.terminator and index != last:
                self.error(op, f"'{op.name}' must be the last op of its region")
            self._verify_op(op, spec, scope, defined, parent, in_proc)

    def _verify_op(
        self,
        op: Op,
        spec: _OpSpec,
        scope: dict,
        defined: set,
        parent: Op | None,
        in_proc: Op | None,
    ) -> None:
        # The op's own checks walk its attributes, finding its uses on the way.
        uses = op.uses() if id(op) in self.own_known_good else self._verify_own(op, spec)
        if in_proc is not None and spec.module_level_only:
            self.error(op, f"'{op.name}' is only allowed at skill level")
        # Uses.
        for name in uses:
            if name not in scope:
                if name in defined:
                    self.error(op, f"value %{name} is used out of its scope")
                else:
                    self.error(op, f"use of undefined value %{name}")
        if in_proc is None and uses:
            self.error(op, "values can only be used inside a procedure")
        # Terminator placement.
        if op.name == "ctl.yield" and (parent is None or parent.name not in _YIELDING_PARENTS):
            self.error(op, "ctl.yield is only allowed at the end of a control-flow region")
        if op.name == "ctl.return":
            self._verify_return(op, scope, in_proc)
        # Op-specific hook, with the types of visible values.
        if spec.has_hook:
            self.ctx.value_types = scope
            op.verify_op(self.ctx)
        # Regions: each sees the enclosing scope plus its own arguments. What
        # a region defines is undone when it ends, rather than giving it a
        # copy of the scope: a procedure of many branches (a dispatcher over
        # many procedures) would copy an ever larger scope, quadratic time.
        for region in op.regions:
            mark = len(self.scope_log)
            for arg in region.args:
                self._define(op, arg.name, arg.type, scope, defined)
            self._verify_region(region, scope, defined, parent=op, in_proc=in_proc)
            self._leave_region(scope, mark)
        # Results become visible after the op.
        for value in op.results:
            self._define(op, value.name, value.type, scope, defined)

    def _verify_return(self, op: Op, scope: dict, in_proc: Op | None) -> None:
        if in_proc is None:
            self.error(op, "ctl.return is only allowed inside a procedure")
            return
        expected = tuple(
            t.type for t in in_proc.attr("result_types", ()) if isinstance(t, TypeAttr)
        )
        if len(op.operands) != len(expected):
            self.error(
                op,
                f"ctl.return returns {len(op.operands)} value(s) but @{in_proc.sym_name} "
                f"declares {len(expected)} result(s)",
            )
            return
        for name, want in zip(op.operands, expected):
            have = scope.get(name)
            if have is not None and not is_assignable(have, want):
                self.error(op, f"ctl.return of %{name}: type {have} does not match result type {want}")

    # ---- per-op checks ---------------------------------------------------------------
    def _verify_own(self, op: Op, spec: _OpSpec) -> tuple[str, ...]:
        """The checks that depend only on ``op`` itself and the module's symbols.

        Returns ``op.uses()``: the one pass over the attributes that checks
        them also collects the ``%x`` references nested in them.
        """
        if not spec.registered:
            if not self.allow_unregistered:
                self.error(op, f"unknown op '{op.name}' (use --allow-unregistered to accept it)")
            return self._verify_attributes_common(op)
        low, high = spec.operands
        if not low <= len(op.operands) <= high:
            self.error(
                op,
                f"'{op.name}' takes {_count_text(op.operand_count)} operand(s), "
                f"got {len(op.operands)}",
            )
        low, high = spec.results
        if not low <= len(op.results) <= high:
            self.error(
                op,
                f"'{op.name}' produces {_count_text(op.result_count)} result(s), "
                f"got {len(op.results)}",
            )
        low, high = spec.regions
        if not low <= len(op.regions) <= high:
            self.error(
                op,
                f"'{op.name}' has {_count_text(op.region_count)} region(s), got {len(op.regions)}",
            )
        # One pass over the attributes: count the required keys present, run
        # the checkers, set aside the values with something nested in them.
        # Problems are reported after it, in the order of separate passes
        # (missing keys, then checker problems, then nested problems).
        attributes = op.attributes
        table = spec.attr_table
        required_found = 0
        problems: list[str] = []
        compound: list[tuple[str, object]] = []
        for key, value in attributes.items:
            entry = table.get(key)
            if entry is not None:
                check, required = entry
                required_found += required  # counts each key once: a DictAttr's keys are unique
                if check is not None:
                    problem = check(value)
                    if problem:
                        problems.append(f"attribute '{key}' of '{op.name}': {problem}")
            if type(value) not in _NOTHING_TO_CHECK:
                compound.append((key, value))
        if required_found < spec.required_count:
            for key in spec.required_attrs:
                if key not in attributes:
                    self.error(op, f"'{op.name}' requires attribute '{key}'")
        for problem in problems:
            self.error(op, problem)
        # Most ops have nothing nested to check: their uses are the operands.
        return self._verify_compound(op, compound) if compound else op.operands

    def _verify_attributes_common(self, op: Op) -> tuple[str, ...]:
        """Check what is nested in ``op``'s attributes; return ``op.uses()``."""
        compound = [
            (key, value) for key, value in op.attributes.items if type(value) not in _NOTHING_TO_CHECK
        ]
        return self._verify_compound(op, compound)

    def _verify_compound(self, op: Op, compound: list[tuple[str, object]]) -> tuple[str, ...]:
        """Check the attributes ``compound`` of ``op`` that hold something; return ``op.uses()``."""
        refs: list[str] = []
        for key, value in compound:
            self._verify_nested(op, key, value, refs)
        # As Op.uses: the operands, then the %x references in attribute order.
        return op.operands + tuple(refs) if refs else op.operands

    def _verify_nested(self, op: Op, key: str, value: object, refs: list[str]) -> None:
        """Check the capabilities, types and symbol references in ``value``, pre-order.

        Appends the names of the value references (``%x``) found to ``refs``.
        """
        # The kinds are disjoint: the most frequent (capabilities) is tested first.
        if isinstance(value, Cap):
            if not is_primitive(value.primitive):
                hint = suggest(value.primitive)
                extra = f"; did you mean {hint[0]}?" if hint else ""
                self.error(op, f"unknown capability primitive '{value.primitive}'{extra}")
            if not 0 <= value.level <= 3:
                self.error(op, f"capability level L{value.level} is not in L0..L3")
        elif isinstance(value, tuple):
            for item in value:
                if type(item) not in _NOTHING_TO_CHECK:
                    self._verify_nested(op, key, item, refs)
        elif isinstance(value, DictAttr):
            for _, item in value.items:
                if type(item) not in _NOTHING_TO_CHECK:
                    self._verify_nested(op, key, item, refs)
        elif isinstance(value, ValueRef):
            refs.append(value.name)
        elif isinstance(value, TypeAttr):
            problem = validate_type(value.type)
            if problem:
                self.error(op, f"attribute '{key}': {problem}")
        elif isinstance(value, SymbolRef) and key != "sym_name":
            target = self.symbols.get(value.name)
            if target is None:
                self.error(op, f"reference to undefined symbol @{value.name}")
                return
            want = _SYMBOL_KIND.get((op.name, key))
            if want is not None and target.name not in want:
                what = " or ".join(w.split(".")[1] for w in want)
                self.error(op, f"@{value.name} is not a {what}")


def verify(module: Module, allow_unregistered: bool = False) -> list[Diagnostic]:
    """Verify ``module``; return all error diagnostics (empty when valid)."""
    return Verifier(module, allow_unregistered).run()


def symbol_signature(module: Module) -> tuple:
    """What other ops may depend on in a module's symbols: names, kinds, proc types.

    Two modules with the same signature resolve every ``@ref`` and every
    ``ctl.call`` the same way.
    """
    signature = []
    for op in module.body.ops:
        name = op.attr("sym_name")
        if not isinstance(name, str):
            continue
        if op.name == "skill.proc":
            params = tuple(v.type for v in op.regions[0].args) if op.regions else ()
            signature.append((name, op.name, params, op.attr("result_types", ())))
        else:
            signature.append((name, op.name, op.attr("kind")))
    return tuple(signature)


def verify_changed(
    module: Module, verified: Module, allow_unregistered: bool = False
) -> list[Diagnostic]:
    """Verify ``module`` knowing ``verified`` (from which it was derived) was valid.

    IR is immutable, so an op that is the very object of the valid module is
    still valid as far as the op itself is concerned when nothing it may
    depend on outside itself (the symbols and procedure signatures) changed.
    Then a top-level op taken over unchanged is not checked at all; inside a
    rebuilt top-level op, ops taken over from the valid module skip their
    own checks (counts, attributes, symbol references) but not the ones that
    depend on where they now stand (scopes, value types, placement). When the
    symbols changed, everything is verified.
    """
    if symbol_signature(module) != symbol_signature(verified):
        return verify(module, allow_unregistered)
    kept = frozenset(id(op) for op in module.body.ops)
    known_good = frozenset(id(op) for op in verified.body.ops if id(op) in kept)
    # ``verified`` is alive for the whole call, so no id below can be reused
    # by an op of ``module`` that is not the very same object. Unregistered
    # ops are left out: whether they pass depends on ``allow_unregistered``.
    own_known_good = frozenset(
        id(inner)
        for op in verified.body.ops
        if id(op) not in known_good
        for inner in op.walk()
        if inner.registered
    )
    return Verifier(module, allow_unregistered).run(known_good, own_known_good)


def verify_or_raise(module: Module, allow_unregistered: bool = False) -> None:
    """Verify ``module`` and raise :class:`SkvmError` carrying every problem."""
    diagnostics = verify(module, allow_unregistered)
    if diagnostics:
        raise SkvmError(diagnostics)


def unknown_location(file: str) -> Location:
    """A location for problems that belong to no op of ``file``."""
    return Location(file, 1, 1)
