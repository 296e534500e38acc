"""The core IR nodes: values, regions, operations and the module.

Every node is a frozen ``attrs`` class. A transform never mutates; it builds
a new node with :func:`attrs.evolve` (or the ``with_*`` helpers), so "nothing
changed" is object identity. Use-def chains and effects are analyses
(``skvm.passes.analysis``), not stored links.

Operations share one generic shape (name, operands, results, attributes,
regions, location). Each registered op name has a subclass that adds no
fields, only class-level metadata (:class:`OpDef` data: traits, effects,
custom-syntax description, verifier hook) and convenience accessors. The
registry maps op names to those classes; unknown names build
:class:`UnregisteredOp`.
"""

from __future__ import annotations

import enum
import functools
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from skvm.diagnostics import Location
from skvm.ir.attributes import Attribute, DictAttr, SymbolRef, ValueRef, dict_attr_of, to_attr
from skvm.ir.types import Type


@attrs.frozen
class Value:
    """An SSA value definition: a name unique in its procedure, and a type."""

    name: str
    type: Type


class Trait(enum.Flag):
    """Structural properties of an op kind."""

    NONE = 0
    #: No side effects: removable when its results are unused.
    PURE = enum.auto()
    #: Must be the last op of its region.
    TERMINATOR = enum.auto()
    #: Carries regions.
    HAS_REGIONS = enum.auto()
    #: Defines a symbol (``sym_name``) referable with ``@name``.
    SYMBOL = enum.auto()
    #: Values of enclosing regions are not visible inside (procedures).
    ISOLATED = enum.auto()
    #: Only valid at module (skill) level.
    MODULE_LEVEL = enum.auto()
    #: Context for the model (prompt text), no run-time behaviour.
    CONTEXT = enum.auto()


class Effect(enum.Flag):
    """Kinds of side effects an op may have (summarised by the ``effects`` analysis)."""

    NONE = 0
    READ = enum.auto()  # reads files
    WRITE = enum.auto()  # writes files
    EXEC = enum.auto()  # runs processes
    NET = enum.auto()  # talks to the network
    MODEL = enum.auto()  # calls a model
    ENV = enum.auto()  # inspects or changes the environment
    CONTROL = enum.auto()  # transfers control (return, yield)
    UNKNOWN = enum.auto()  # may do anything (an unregistered op, an agentic step)


#: Attribute values that hold nothing nested (skipped when looking for references).
_SCALAR_TYPES = frozenset({str, int, float, bool})


def _collect_refs(value: Any, kind: type, out: list[str]) -> None:
    """Append the names of the ``kind`` references in ``value`` (pre-order, as ``walk_attr``)."""
    if isinstance(value, kind):
        out.append(value.name)
    elif isinstance(value, tuple):
        for item in value:
            if type(item) not in _SCALAR_TYPES:
                _collect_refs(item, kind, out)
    elif isinstance(value, DictAttr):
        for _, item in value.items:
            if type(item) not in _SCALAR_TYPES:
                _collect_refs(item, kind, out)


def _sorted_attrs(value: Any) -> DictAttr:
    if isinstance(value, DictAttr):
        return value
    if not value:
        return _NO_ATTRIBUTES  # immutable, so one instance serves every op without attributes
    return DictAttr.of(value)


_NO_ATTRIBUTES = DictAttr()
#: Op.build's construction steps (see there).
_new_object = object.__new__
_set_field = object.__setattr__


@attrs.frozen
class Region:
    """An ordered list of ops, with optional arguments (for loop bodies, procs)."""

    ops: tuple[Op, ...] = attrs.field(default=(), converter=tuple)
    args: tuple[Value, ...] = attrs.field(default=(), converter=tuple)

    def with_ops(self, ops: Sequence[Op]) -> Region:
        """This region with ``ops`` instead (identity when unchanged)."""
        ops = tuple(ops)
        if len(ops) == len(self.ops) and all(map(operator.is_, ops, self.ops)):
            return self
        return attrs.evolve(self, ops=ops)


@attrs.frozen
class Op:
    """A SkIR operation. Subclasses per op name add metadata, not fields.

    Attributes:
        name: the op name, ``dialect.verb``.
        operands: names of the SSA values used (``%x`` without the sigil).
        results: the values defined.
        attributes: sorted, immutable attribute dictionary.
        regions: nested regions (branches, bodies).
        loc: where the op came from in the skill's source (printed as
            ``loc("SKILL.md":l:c)``).
        pos: where the op was parsed in a ``.skir`` file; not printed, not
            compared. Diagnostics fall back to it when ``loc`` is absent.
    """

    name: str
    operands: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    results: tuple[Value, ...] = attrs.field(default=(), converter=tuple)
    attributes: DictAttr = attrs.field(factory=DictAttr, converter=_sorted_attrs)
    regions: tuple[Region, ...] = attrs.field(default=(), converter=tuple)
    loc: Location | None = None
    pos: Location | None = attrs.field(default=None, eq=False, repr=False)

    # ---- class-level op definition (overridden by registered subclasses) ----
    #: Structural traits.
    traits: ClassVar[Trait] = Trait.NONE
    #: Side effects the op kind has.
    effects: ClassVar[Effect] = Effect.UNKNOWN
    #: One-line summary (docs, ``--list-ops``).
    summary: ClassVar[str] = ""
    #: Custom syntax: attribute names printed positionally, in order.
    positional: ClassVar[tuple[str, ...]] = ()
    #: How many of the positional attributes are required (a prefix).
    required_positional: ClassVar[int] = 0
    #: Keyword printed before region i (e.g. ``("", "else")``).
    region_keywords: ClassVar[tuple[str, ...]] = ()
    #: Number of regions: an int, or a (min, max) range (max None = unbounded).
    region_count: ClassVar[int | tuple[int, int | None]] = 0
    #: Attributes that must be present.
    required_attrs: ClassVar[tuple[str, ...]] = ()
    #: Expected attribute kinds for verification: name -> checker.
    attr_checks: ClassVar[Mapping[str, Callable[[Any], str | None]]] = {}
    #: Operand count: an int, or (min, max) with max None = unbounded.
    operand_count: ClassVar[int | tuple[int, int | None]] = (0, None)
    #: Result count: an int, or (min, max).
    result_count: ClassVar[int | tuple[int, int | None]] = (0, 1)
    #: Whether the op is part of the registered dialects.
    registered: ClassVar[bool] = True

    # ---- construction --------------------------------------------------------
    @staticmethod
    def build(
        name: str,
        operands: Sequence[str] = (),
        results: Sequence[Value] = (),
        attributes: Mapping[str, Any] | DictAttr | None = None,
        regions: Sequence[Region] = (),
        loc: Location | None = None,
        pos: Location | None = None,
    ) -> Op:
        """Build an op of the class registered for ``name``."""
        cls = OP_REGISTRY.get(name, UnregisteredOp)
        # Exactly what the attrs ``__init__`` does: each field's converter,
        # then ``object.__setattr__`` (how a frozen attrs class sets its
        # fields). Inlined because the front end builds ops by the ten
        # thousand, and the generated ``__init__``, with a call per field and
        # per converter, cost more than the rest of building an op. Op
        # subclasses add no fields and no ``__init__`` (``register`` checks).
        if not isinstance(attributes, DictAttr):  # _sorted_attrs, without a call per op
            attributes = dict_attr_of(attributes) if attributes else _NO_ATTRIBUTES
        op = _new_object(cls)
        _set_field(op, "name", name)
        _set_field(op, "operands", tuple(operands))
        _set_field(op, "results", tuple(results))
        _set_field(op, "attributes", attributes)
        _set_field(op, "regions", tuple(regions))
        _set_field(op, "loc", loc)
        _set_field(op, "pos", pos)
        return op

    # ---- accessors ------------------------------------------------------------
    @property
    def dialect(self) -> str:
        """The dialect prefix of the op name."""
        return self.name.split(".", 1)[0]

    def attr(self, key: str, default: Any = None) -> Any:
        """The attribute ``key``, or ``default``."""
        return self.attributes.get(key, default)

    def has_attr(self, key: str) -> bool:
        """Whether attribute ``key`` is present."""
        return key in self.attributes

    @property
    def result(self) -> Value | None:
        """The single result, or None."""
        return self.results[0] if self.results else None

    @property
    def sym_name(self) -> str | None:
        """The symbol this op defines, if any."""
        return self.attr("sym_name")

    @property
    def location(self) -> Location | None:
        """Where diagnostics about this op point: its source loc, else its parse position."""
        return self.loc if self.loc is not None else self.pos

    def uses(self) -> tuple[str, ...]:
        """Every value this op uses directly: operands and ``%x`` inside attributes."""
        refs: list[str] = []
        for _, value in self.attributes.items:
            if type(value) not in _SCALAR_TYPES:
                _collect_refs(value, ValueRef, refs)
        # Most ops have no value inside their attributes: their uses are the operands.
        return self.operands + tuple(refs) if refs else self.operands

    def symbol_uses(self) -> tuple[str, ...]:
        """Every symbol referenced from this op's attributes (``@x``)."""
        refs: list[str] = []
        for key, value in self.attributes.items:
            if key != "sym_name" and type(value) not in _SCALAR_TYPES:
                _collect_refs(value, SymbolRef, refs)
        return tuple(refs)

    def walk(self) -> Iterator[Op]:
        """Yield this op and every op nested in its regions, pre-order."""
        yield self
        for region in self.regions:
            for op in region.ops:
                yield from op.walk()

    # ---- functional updates -------------------------------------------------
    def with_attrs(self, **changes: Any) -> Op:
        """A copy with attributes set (value None removes the attribute)."""
        current = self.attributes.to_dict()
        for key, value in changes.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = to_attr(value)
        return attrs.evolve(self, attributes=DictAttr(tuple(sorted(current.items()))))

    def with_regions(self, regions: Sequence[Region]) -> Op:
        """A copy with other regions (identity when unchanged)."""
        regions = tuple(regions)
        if len(regions) == len(self.regions) and all(map(operator.is_, regions, self.regions)):
            return self
        return attrs.evolve(self, regions=regions)

    # ---- verification hook ------------------------------------------------------
    def verify_op(self, ctx: VerifyContext) -> None:
        """Op-specific checks beyond the declarative ones; report through ``ctx``."""


class UnregisteredOp(Op):
    """An op whose name no dialect registers (kept only with --allow-unregistered)."""

    registered = False
    effects = Effect.UNKNOWN
    operand_count = (0, None)
    result_count = (0, None)
    region_count = (0, None)


class VerifyContext:
    """What an op's ``verify_op`` hook can see and report to (set by the verifier)."""

    def __init__(self, module: Module, report: Callable[[Op | None, str], None]):
        self.module = module
        self._report = report
        self.value_types: dict[str, Type] = {}

    def error(self, op: Op | None, message: str) -> None:
        """Report an error about ``op``."""
        self._report(op, message)

    def type_of(self, name: str) -> Type | None:
        """The type of a value visible at the current op, if known."""
        return self.value_types.get(name)


#: op name -> op class; filled by the dialect modules.
OP_REGISTRY: dict[str, type[Op]] = {}


def register(cls: type[Op]) -> type[Op]:
    """Class decorator registering an op class under its ``op_name``."""
    name = cls.__dict__.get("op_name")
    if not name:
        raise ValueError(f"{cls.__name__} needs an op_name")
    if name in OP_REGISTRY:
        raise ValueError(f"op {name} registered twice")
    if cls.__init__ is not Op.__init__:
        # An attrs subclass (with fields or checks of its own) would have one.
        raise ValueError(f"{cls.__name__} may not define __init__: Op.build does not call it")
    OP_REGISTRY[name] = cls
    return cls


@attrs.frozen
class Module:
    """A skill: its symbol name and its top-level region of ops.

    The body holds ``skill.meta``, ``skill.resource``, ``skill.proc`` and
    module-level context and environment ops, in source order.
    """

    sym_name: str
    body: Region = attrs.field(factory=Region)

    # ---- accessors ------------------------------------------------------------
    @property
    def ops(self) -> tuple[Op, ...]:
        """The top-level ops."""
        return self.body.ops

    def walk(self) -> Iterator[Op]:
        """Every op of the module, pre-order."""
        for op in self.body.ops:
            yield from op.walk()

    @functools.cached_property
    def _symbol_table(self) -> dict[str, Op]:
        # Computed once per module object (modules are immutable), so that
        # lookups from per-op verifiers and passes stay O(1).
        table: dict[str, Op] = {}
        for op in self.body.ops:
            name = op.attr("sym_name")
            if isinstance(name, str) and name not in table:
                table[name] = op
        return table

    def symbols(self) -> dict[str, Op]:
        """Top-level symbol table: name -> defining op (first definition wins)."""
        return dict(self._symbol_table)

    def lookup(self, name: str) -> Op | None:
        """The op defining symbol ``name``."""
        return self._symbol_table.get(name)

    @property
    def meta(self) -> Op | None:
        """The ``skill.meta`` op, if any."""
        for op in self.body.ops:
            if op.name == "skill.meta":
                return op
        return None

    def procs(self) -> list[Op]:
        """The ``skill.proc`` ops."""
        return [op for op in self.body.ops if op.name == "skill.proc"]

    def resources(self) -> list[Op]:
        """The ``skill.resource`` ops."""
        return [op for op in self.body.ops if op.name == "skill.resource"]

    def with_ops(self, ops: Sequence[Op]) -> Module:
        """This module with other top-level ops (identity when unchanged)."""
        body = self.body.with_ops(ops)
        if body is self.body:
            return self
        return attrs.evolve(self, body=body)


#: op class -> its traits as plain int bits. Flag-enum operators, ``.value``
#: and even hashing a member run Python code; ``_value_`` is the member's
#: stored int, so a test is one dictionary lookup and one ``&``.
_TRAIT_BITS: dict[type, int] = {}


def has_trait(op: Op, trait: Trait) -> bool:
    """Whether ``op``'s class has ``trait`` (any of them, for a combination)."""
    bits = _TRAIT_BITS.get(type(op))
    if bits is None:
        bits = _TRAIT_BITS[type(op)] = op.traits._value_
    return bits & trait._value_ != 0


def count_ops(module: Module) -> int:
    """The number of ops in ``module`` (all nesting levels)."""
    return sum(1 for _ in module.walk())


def replace_ops_deep(
    region: Region, fn: Callable[[Op], Sequence[Op] | Op | None]
) -> Region:
    """Rebuild ``region`` bottom-up, replacing each op by ``fn(op)``.

    ``fn`` receives an op whose regions were already rewritten and returns the
    op (unchanged or new), a sequence of ops, or None to delete it. Unchanged
    subtrees keep their identity.
    """
    new_ops: list[Op] = []
    for op in region.ops:
        if op.regions:
            op = op.with_regions([replace_ops_deep(r, fn) for r in op.regions])
        out = fn(op)
        if out is None:
            continue
        if isinstance(out, Op):
            new_ops.append(out)
        else:
            new_ops.extend(out)
    return region.with_ops(new_ops)


def get_attr_value(op: Op, key: str, default: Any = None) -> Attribute | Any:
    """Functional spelling of :meth:`Op.attr` for use in tables."""
    return op.attr(key, default)
