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

from skvm.diagnostics import Diagnostic, Location, Severity, SkvmError
from skvm.ir.attributes import Cap, SymbolRef, TypeAttr, walk_attr
from skvm.ir.dialects import COMMON_ATTR_CHECKS
from skvm.ir.operation import Module, Op, Region, Trait, VerifyContext, has_trait
from skvm.ir.types import Type, is_assignable, validate_type

#: Attribute values with nothing nested in them.
_SCALAR_TYPES = frozenset({str, int, float, bool})
#: Ops whose regions may end in ctl.yield.
_YIELDING_PARENTS = frozenset(
    {"ctl.if", "ctl.for_each", "ctl.map", "ctl.parallel", "jit.solid", "env.if"}
)
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


def _count_ok(spec, n: int) -> bool:
    if isinstance(spec, int):
        return n == spec
    low, high = spec
    return n >= low and (high is None or n <= high)


def _count_text(spec) -> str:
    if isinstance(spec, int):
        return str(spec)
    low, high = spec
    if high is None:
        return f"at least {low}"
    if low == high:
        return str(low)
    return f"{low} to {high}"


class Verifier:
    """Walks a module once and collects diagnostics."""

    def __init__(self, module: Module, allow_unregistered: bool = False):
        self.module = module
        self.allow_unregistered = allow_unregistered
        self.diagnostics: list[Diagnostic] = []
        self.ctx = VerifyContext(module, self._report)
        self.symbols: dict[str, Op] = {}

    # ---- reporting ---------------------------------------------------------------
    def _report(self, op: Op | None, message: str) -> None:
        loc = op.location if op is not None else None
        self.diagnostics.append(Diagnostic(Severity.ERROR, message, loc))

    def error(self, op: Op | None, message: str) -> None:
        """Report an error about ``op``."""
        self._report(op, message)

    # ---- entry -----------------------------------------------------------------------
    def run(self, known_good: frozenset[int] = frozenset()) -> list[Diagnostic]:
        """Verify the module; return every diagnostic.

        Top-level ops whose ``id`` is in ``known_good`` are not re-verified
        (see :func:`verify_changed`).
        """
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
        if not (
            has_trait(op, Trait.MODULE_LEVEL | Trait.CONTEXT)
            or op.name in _MODULE_LEVEL_ALLOWED
            or not op.registered
        ):
            self.error(op, f"'{op.name}' must be inside a procedure, not at skill level")
        if op.name == "skill.proc":
            self._verify_proc(op)
            return
        self._verify_op(op, scope={}, defined=set(), parent=None, in_proc=None)

    def _verify_proc(self, proc: Op) -> None:
        self._verify_op_shape(proc)
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
        scope[name] = t

    def _verify_region(
        self, region: Region, scope: dict, defined: set, parent: Op, in_proc: Op | None
    ) -> None:
        count = len(region.ops)
        for index, op in enumerate(region.ops):
            if has_trait(op, Trait.TERMINATOR) and index != count - 1:
                self.error(op, f"'{op.name}' must be the last op of its region")
            self._verify_op(op, scope, defined, parent, in_proc)

    def _verify_op(
        self, op: Op, scope: dict, defined: set, parent: Op | None, in_proc: Op | None
    ) -> None:
        self._verify_op_shape(op)
        if in_proc is not None and has_trait(op, Trait.MODULE_LEVEL):
            self.error(op, f"'{op.name}' is only allowed at skill level")
        # Uses.
        for name in op.uses():
            if name not in scope:
                if name in defined:
                    self.error(op, f"value %{name} is used out of its scope")
                else:
                    self.error(op, f"use of undefined value %{name}")
        if in_proc is None and op.uses():
            self.error(op, "values can only be used inside a procedure")
        # Terminator placement.
        if op.name == "ctl.yield" and (parent is None or parent.name not in _YIELDING_PARENTS):
            self.error(op, "ctl.yield is only allowed at the end of a control-flow region")
        if op.name == "ctl.return":
            self._verify_return(op, scope, in_proc)
        # Op-specific hook, with the types of visible values.
        self.ctx.value_types = scope
        op.verify_op(self.ctx)
        # Regions: each sees the enclosing scope plus its own arguments.
        for region in op.regions:
            inner = dict(scope)
            for arg in region.args:
                self._define(op, arg.name, arg.type, inner, defined)
            self._verify_region(region, inner, defined, parent=op, in_proc=in_proc)
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

    # ---- per-op shape ----------------------------------------------------------------
    def _verify_op_shape(self, op: Op) -> None:
        if not op.registered:
            if not self.allow_unregistered:
                self.error(op, f"unknown op '{op.name}' (use --allow-unregistered to accept it)")
            self._verify_attributes_common(op)
            return
        if not _count_ok(op.operand_count, len(op.operands)):
            self.error(
                op,
                f"'{op.name}' takes {_count_text(op.operand_count)} operand(s), "
                f"got {len(op.operands)}",
            )
        if not _count_ok(op.result_count, len(op.results)):
            self.error(
                op,
                f"'{op.name}' produces {_count_text(op.result_count)} result(s), "
                f"got {len(op.results)}",
            )
        if not _count_ok(op.region_count, len(op.regions)):
            self.error(
                op,
                f"'{op.name}' has {_count_text(op.region_count)} region(s), got {len(op.regions)}",
            )
        for key in op.required_attrs:
            if key not in op.attributes:
                self.error(op, f"'{op.name}' requires attribute '{key}'")
        for key, value in op.attributes.items:
            check = op.attr_checks.get(key) or COMMON_ATTR_CHECKS.get(key)
            if check is not None:
                problem = check(value)
                if problem:
                    self.error(op, f"attribute '{key}' of '{op.name}': {problem}")
        self._verify_attributes_common(op)

    def _verify_attributes_common(self, op: Op) -> None:
        from skvm.capabilities import is_primitive, suggest

        for key, value in op.attributes.items:
            if type(value) in _SCALAR_TYPES:
                continue  # nothing nested to check
            for item in walk_attr(value):
                if isinstance(item, Cap):
                    if not is_primitive(item.primitive):
                        hint = suggest(item.primitive)
                        extra = f"; did you mean {hint[0]}?" if hint else ""
                        self.error(op, f"unknown capability primitive '{item.primitive}'{extra}")
                    if not 0 <= item.level <= 3:
                        self.error(op, f"capability level L{item.level} is not in L0..L3")
                elif isinstance(item, TypeAttr):
                    problem = validate_type(item.type)
                    if problem:
                        self.error(op, f"attribute '{key}': {problem}")
                elif isinstance(item, SymbolRef) and key != "sym_name":
                    target = self.symbols.get(item.name)
                    if target is None:
                        self.error(op, f"reference to undefined symbol @{item.name}")
                        continue
                    want = _SYMBOL_KIND.get((op.name, key))
                    if want is not None and target.name not in want:
                        what = " or ".join(w.split(".")[1] for w in want)
                        self.error(op, f"@{item.name} is not a {what}")


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

    IR is immutable, so a top-level op that is the very object of the valid
    module is still valid when nothing it may depend on outside itself (the
    symbols and procedure signatures) changed; only the other ops are checked.
    Otherwise everything is verified.
    """
    if symbol_signature(module) != symbol_signature(verified):
        return verify(module, allow_unregistered)
    known_good = frozenset(id(op) for op in verified.body.ops)
    return Verifier(module, allow_unregistered).run(known_good)


def verify_or_raise(module: Module, allow_unregistered: bool = False) -> None:
    """Verify ``module`` and raise :class:`SkvmError` carrying every problem."""
    diagnostics = verify(module, allow_unregistered)
    if diagnostics:
        raise SkvmError(diagnostics)


def unknown_location(file: str) -> Location:
    """A location for problems that belong to no op of ``file``."""
    return Location(file, 1, 1)
