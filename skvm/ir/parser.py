"""Parse SkIR text into IR nodes.

One LALR parser (``skvm/grammar/skir.lark``) is built once per process with
positions on and four start rules (module, op, type, attribute). An inline
Transformer builds the typed nodes during the parse; every rule has a
callback (Lark raises on a rule it does not know). Every problem is raised
as :class:`~skvm.diagnostics.SkvmError` with a located diagnostic, never as a
Lark or Python exception.
"""

from __future__ import annotations

import json
import re
import threading
from functools import lru_cache, partial
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import (
    LarkError,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.lexer import Lexer

import skvm.ir.dialects  # noqa: F401  (registers the ops)
from skvm.diagnostics import Diagnostic, Location, Severity, SkvmError
from skvm.ir.attributes import (
    UNIT,
    Cap,
    DictAttr,
    Keyword,
    SymbolRef,
    TypeAttr,
    ValueRef,
)
from skvm.ir.operation import OP_REGISTRY, Module, Op, Region, Value
from skvm.ir.types import Type
from skvm.lalr import LalrDriver
from skvm.perf import paused_gc

_lock = threading.Lock()

#: Human names for terminals in "expected ..." messages.
_TERMINAL_NAMES = {
    "STRING": "a string",
    "INT": "an integer",
    "FLOAT": "a number",
    "IDENT": "an identifier",
    "OPNAME": "an op name",
    "GENERIC_NAME": 'a generic op ("dialect.op"(…))',
    "SYMBOL": "a symbol (@name)",
    "VALUE": "a value (%name)",
    "CAP": "a capability (primitive:Ln)",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "LESSTHAN": "'<'",
    "MORETHAN": "'>'",
    "BANG": "'!'",
    "__ANON_0": "'->'",
    "$END": "end of input",
}


def _unquote(token: str) -> str:
    """Decode a string literal (JSON escapes)."""
    try:
        return json.loads(token)
    except ValueError:
        # Escapes JSON does not know (e.g. \x): keep them literally.
        return token[1:-1].replace('\\"', '"').replace("\\\\", "\\")


def _name(token: str) -> str:
    """Strip the sigil of ``@name`` / ``%name`` (quoted forms decoded)."""
    body = token[1:]
    if body.startswith('"'):
        return _unquote(body)
    return body


class _ParseFailure(Exception):
    """Raised inside callbacks; carries a located message."""

    def __init__(self, message: str, line: int, col: int):
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


@v_args(inline=True)
class _Builder(Transformer):
    """Builds IR nodes from the parse (inline, during the LALR parse)."""

    def __init__(self) -> None:
        super().__init__()
        self.filename = "<input>"
        self.line_offset = 0

    def _pos(self, token: Token | Any) -> Location | None:
        line = getattr(token, "line", None)
        if line is None:
            return None
        return Location(self.filename, line + self.line_offset, token.column)

    # ---- entry points -------------------------------------------------------------
    def start(self, module):
        return module

    def op_start(self, op):
        return op

    def type_start(self, t):
        return t

    def attr_start(self, value):
        return value

    def module(self, symbol, *ops):
        return Module(_name(symbol), Region(ops))

    # ---- ops ----------------------------------------------------------------------------
    def meta_op(self, keyword, attributes, loc):
        return Op.build(
            "skill.meta", attributes=attributes or DictAttr(), loc=loc, pos=self._pos(keyword)
        )

    def resource_op(self, meta, symbol, path, attributes, loc):
        merged = dict(attributes.items) if attributes else {}
        for key in ("sym_name", "path"):
            if key in merged:
                raise _ParseFailure(
                    f"'{key}' is given by the resource syntax, not the dictionary",
                    meta.line,
                    meta.column,
                )
        merged["sym_name"] = _name(symbol)
        merged["path"] = _unquote(path)
        return Op.build(
            "skill.resource",
            attributes=DictAttr(tuple(sorted(merged.items()))),
            loc=loc,
            pos=self._pos(meta),
        )

    def proc_op(self, meta, symbol, params, results, attributes, region, loc):
        merged = dict(attributes.items) if attributes else {}
        merged["sym_name"] = _name(symbol)
        if results is not None:
            merged["result_types"] = tuple(TypeAttr(t) for t in results)
        body = Region(region.ops, tuple(params or ()))
        if region.args:
            raise _ParseFailure("a procedure's parameters go in its header", meta.line, meta.column)
        return Op.build(
            "skill.proc",
            attributes=DictAttr(tuple(sorted(merged.items()))),
            regions=(body,),
            loc=loc,
            pos=self._pos(meta),
        )

    def single_result(self, t):
        return (t,)

    def result_tuple(self, types=None):
        return tuple(types or ())

    def custom_op(self, results, name_token, positionals, operands, attributes, regions, types, loc):
        meta = name_token
        name = str(name_token)
        cls = OP_REGISTRY.get(name)
        merged: dict[str, Any] = dict(attributes.items) if attributes else {}
        if positionals:
            if cls is None:
                raise _ParseFailure(
                    f"unknown op '{name}' cannot take positional arguments; "
                    "use the generic form",
                    name_token.line,
                    name_token.column,
                )
            if len(positionals) > len(cls.positional):
                raise _ParseFailure(
                    f"'{name}' takes at most {len(cls.positional)} positional argument(s), "
                    f"got {len(positionals)}",
                    name_token.line,
                    name_token.column,
                )
            for key, value in zip(cls.positional, positionals):
                if key in merged:
                    raise _ParseFailure(
                        f"attribute '{key}' given both positionally and in the dictionary",
                        name_token.line,
                        name_token.column,
                    )
                merged[key] = value
        missing = next(
            (
                key
                for key in (cls.positional[: cls.required_positional] if cls is not None else ())
                if key not in merged
            ),
            None,
        )
        if missing is not None:
            raise _ParseFailure(
                f"'{name}' expects its '{missing}' argument", name_token.line, name_token.column
            )
        return self._finish(meta, name, results, operands, merged, regions, types, loc)

    def generic_op(
        self, results, name_token, operands, attributes, regions, _operand_types, types, loc
    ):
        meta = name_token
        name = _unquote(str(name_token)[:-1])
        merged = dict(attributes.items) if attributes else {}
        return self._finish(meta, name, results, operands, merged, regions, types, loc)

    def _finish(self, meta, name, results, operands, attributes, regions, types, loc):
        result_names = results or ()
        result_types = types or ()
        if len(result_names) != len(result_types):
            raise _ParseFailure(
                f"'{name}' names {len(result_names)} result(s) but gives "
                f"{len(result_types)} result type(s)",
                meta.line,
                meta.column,
            )
        values = tuple(Value(n, t) for n, t in zip(result_names, result_types))
        return Op.build(
            name,
            operands=operands or (),
            results=values,
            attributes=DictAttr(tuple(sorted(attributes.items()))),
            regions=regions or (),
            loc=loc,
            pos=self._pos(meta),
        )

    def positionals(self, *values):
        return list(values)

    def result_names(self, *tokens):
        return tuple(_name(t) for t in tokens)

    def value_names(self, *tokens):
        return tuple(_name(t) for t in tokens)

    def operand_list(self, names=None):
        return names or ()

    def result_types(self, types):
        return types

    def regions(self, *items):
        return tuple(item for item in items if isinstance(item, Region))

    def region_sep(self, *_):
        return None

    def generic_regions(self, *regions):
        return tuple(regions)

    def region(self, args, *ops):
        return Region(ops, tuple(args or ()))

    def region_args(self, values=None):
        return values or ()

    def typed_values(self, *values):
        return tuple(values)

    def typed_value(self, token, t):
        return Value(_name(token), t)

    def types(self, *types):
        return tuple(types)

    # ---- types -----------------------------------------------------------------------
    def simple_type(self, name):
        return Type(str(name))

    def nested_type(self, name, inner):
        return Type(str(name), inner)

    def schema_type(self, name, schema):
        return Type(str(name), _unquote(schema))

    # ---- attributes ------------------------------------------------------------------
    def string(self, token):
        return _unquote(token)

    def int(self, token):
        return int(token)

    def float(self, token):
        return float(token)

    def true(self):
        return True

    def false(self):
        return False

    def symbol(self, token):
        return SymbolRef(_name(token))

    def keyword(self, token):
        return Keyword(str(token))

    def value_ref(self, token):
        return ValueRef(_name(token))

    def cap(self, token):
        primitive, _, level = str(token).rpartition(":L")
        return Cap(primitive, int(level))

    def type_attr(self, t):
        return TypeAttr(t)

    def list(self, *values):
        if values == (None,):
            return ()
        return tuple(values)

    def dict(self, meta, *entries):
        seen: dict[str, Any] = {}
        for key, value in entries:
            if key in seen:
                raise _ParseFailure(f"duplicate attribute '{key}'", key.line, key.column)
            seen[str(key)] = value
        return DictAttr(tuple(sorted(seen.items())))

    def entry(self, key, value):
        return (key, value)

    def unit_entry(self, key):
        return (key, UNIT)

    def key(self, token):
        if token.type == "STRING":
            return Token.new_borrow_pos("KEY", _unquote(token), token)
        return token

    def loc(self, file, line, col):
        return Location(_unquote(file), int(line), int(col))


#: Brackets deeper than this are refused: the printer and verifier recurse
#: once or twice per level, and real skills nest a handful of levels.
MAX_NESTING = 200
_OPENERS = frozenset({"[", "{", "("})
_CLOSERS = frozenset({"]", "}", ")"})


class _FastLexer(Lexer):
    """A one-regex lexer built from the grammar's terminals (Lark's basic semantics).

    Lark's contextual lexer spends most of the parse in per-token Python
    bookkeeping; this one scans with a single alternation of every terminal
    (ordered like Lark's basic lexer: priority, then width), skips the
    ``%ignore`` terminals inline and retypes identifiers that spell a keyword
    (``skill``, ``as``, ``else``, …). Positions are the same as Lark's.
    """

    __future_interface__ = 2

    def __init__(self, conf) -> None:
        terminals = sorted(
            conf.terminals,
            key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name),
        )
        self.ignore = frozenset(conf.ignore)
        self.terminals_by_name = conf.terminals_by_name
        words = {
            t.pattern.value: t.name
            for t in terminals
            if t.pattern.type == "str" and re.fullmatch(r"\w+", t.pattern.value)
        }
        alternatives = []
        skips = []
        #: terminal name -> {keyword text: keyword terminal} for identifiers that are keywords.
        self.retype: dict[str, dict[str, str]] = {}
        for t in terminals:
            regexp = t.pattern.to_regexp()
            if t.pattern.type == "str" and t.pattern.value in words:
                continue
            if t.pattern.type == "re":
                hits = {w: n for w, n in words.items() if re.fullmatch(regexp, w)}
                if hits:
                    self.retype[t.name] = hits
            if t.name in self.ignore:
                skips.append(f"(?:{regexp})")
            else:
                alternatives.append(f"(?P<{t.name}>{regexp})")
        # One match skips the ignored text before a token and reads the token.
        # Possessive (*+): never backtrack into a comment to find a token in it.
        skip = "(?:" + "|".join(skips) + ")*+" if skips else ""
        self.scanner = re.compile(skip + "(?:" + "|".join(alternatives) + ")")
        self.skipper = re.compile(skip)
        self.allowed = frozenset(t.name for t in terminals) - self.ignore

    def lex(self, lexer_state, parser_state):
        """Yield the tokens of ``lexer_state.text``."""
        source = lexer_state.text
        text = source.text
        pos = source.start
        end = source.end
        line = 1 + text.count("\n", 0, pos)
        line_start = text.rfind("\n", 0, pos) + 1
        match = self.scanner.match
        depth = 0
        retype = self.retype
        # Token() checks for a deprecated keyword and then calls this: one call
        # frame less per token (about 5 % of a parse).
        new_token = getattr(Token, "_future_new", Token)
        while pos < end:
            m = match(text, pos)
            if m is None:
                # Only ignored text left, or a character no terminal matches.
                skipped = self.skipper.match(text, pos).end()
                line += text.count("\n", pos, skipped)
                if skipped > pos and "\n" in text[pos:skipped]:
                    line_start = text.rindex("\n", pos, skipped) + 1
                pos = skipped
                if pos >= end:
                    return
                raise UnexpectedCharacters(
                    text, pos, line, pos - line_start + 1, allowed=self.allowed,
                    state=parser_state, terminals_by_name=self.terminals_by_name,
                )
            kind = m.lastgroup
            start = m.start(kind)
            if start != pos:
                newlines = text.count("\n", pos, start)
                if newlines:
                    line += newlines
                    line_start = text.rindex("\n", pos, start) + 1
            value = m.group(kind)
            stop = m.end()
            keywords = retype.get(kind)
            if keywords is not None and value in keywords:
                kind = keywords[value]
            column = start - line_start + 1
            if value in _OPENERS:
                depth += 1
                if depth > MAX_NESTING:
                    raise _ParseFailure(
                        f"input nests deeper than {MAX_NESTING} levels", line, column
                    )
            elif value in _CLOSERS:
                depth -= 1
            token = new_token(kind, value, start, line, column, line, column + len(value), stop)
            lexer_state.last_token = token
            yield token
            pos = stop


@lru_cache(maxsize=1)
def _grammar_text() -> str:
    return resources.files("skvm.grammar").joinpath("skir.lark").read_text(encoding="utf-8")


_BUILDER = _Builder()


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(
        _grammar_text(),
        parser="lalr",
        start=["start", "op_start", "type_start", "attr_start"],
        lexer=_FastLexer,
        maybe_placeholders=True,
        transformer=_BUILDER,
        cache=False,
    )


def _direct_callbacks(lark: Lark) -> dict | None:
    """Lark's reduce callbacks without the v_args indirection layers.

    Lark wraps each inline transformer method in three Python calls
    (visit wrapper, ``_VArgsWrapper``, ``_vargs_inline``); here each method is
    called directly with the filtered children. The child filters (which
    drop punctuation, expand ``_rules`` and fill ``[x]`` placeholders) are
    Lark's own. Returns None when Lark's internals are not as expected.
    """
    builder = getattr(lark, "_parse_tree_builder", None)
    rule_builders = getattr(builder, "rule_builders", None)
    if rule_builders is None:
        return None
    transformer = lark.options.transformer
    callbacks = {}
    for rule, wrapper_chain in rule_builders:
        name = rule.alias or rule.options.template_source or rule.origin.name
        method = getattr(transformer, name, None)
        if method is None:
            f = partial(builder.tree_class, name)
        else:
            base = getattr(method, "base_func", method)
            f = partial(_call_inline, base)
        for wrapper in wrapper_chain:
            f = wrapper(f)
        callbacks[rule] = f
    return callbacks


def _call_inline(method, children):
    return method(*children)


@lru_cache(maxsize=1)
def _driver() -> LalrDriver:
    lark = _parser()
    return LalrDriver(lark, _direct_callbacks(lark))


def _expected_text(expected) -> str:
    names = sorted({_TERMINAL_NAMES.get(e, f"'{e.lower()}'") for e in expected})
    if len(names) > 6:
        names = names[:6] + ["…"]
    return ", ".join(names)


def _diagnostic_for(exc: UnexpectedInput, filename: str, line_offset: int) -> Diagnostic:
    line = (getattr(exc, "line", None) or 1) + line_offset
    col = getattr(exc, "column", None) or 1
    if isinstance(exc, UnexpectedCharacters):
        message = f"unexpected character {exc.char!r}"
    elif isinstance(exc, UnexpectedEOF):
        message = "unexpected end of input"
        if exc.expected:
            message += f"; expected {_expected_text(exc.expected)}"
    elif isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            message = "unexpected end of input"
            line = (getattr(exc, "line", None) or 1) + line_offset
        else:
            message = f"unexpected {token.value!r}"
        if exc.expected:
            message += f"; expected {_expected_text(exc.expected)}"
    else:
        message = "syntax error"
    return Diagnostic(Severity.ERROR, message, Location(filename, max(1, line), max(1, col)))


def _parse(text: str, start: str, filename: str, line_offset: int = 0) -> Any:
    if "\x00" in text:
        raise SkvmError.at(Location(filename, 1, 1), "input is binary (contains NUL bytes)")
    with _lock, paused_gc():
        _BUILDER.filename = filename
        _BUILDER.line_offset = line_offset
        try:
            return _driver().parse(text, start)
        except _ParseFailure as exc:
            raise SkvmError.at(Location(filename, exc.line + line_offset, exc.col), exc.message)
        except UnexpectedInput as exc:
            if isinstance(getattr(exc, "orig_exc", None), _ParseFailure):
                inner = exc.orig_exc
                raise SkvmError.at(
                    Location(filename, inner.line + line_offset, inner.col), inner.message
                ) from None
            raise SkvmError(_diagnostic_for(exc, filename, line_offset)) from None
        except VisitError as exc:
            inner = exc.orig_exc
            if isinstance(inner, _ParseFailure):
                raise SkvmError.at(
                    Location(filename, inner.line + line_offset, inner.col), inner.message
                ) from None
            raise SkvmError.at(Location(filename, 1, 1), f"cannot build IR: {inner}") from None
        except LarkError as exc:  # pragma: no cover - defensive
            raise SkvmError.at(Location(filename, 1, 1), f"syntax error: {exc}") from None
        except RecursionError:
            raise SkvmError.at(Location(filename, 1, 1), "input nests too deeply") from None


def parse_module(text: str, filename: str = "<input>", line_offset: int = 0) -> Module:
    """Parse a whole ``.skir`` module.

    ``line_offset`` shifts reported lines (for chunks of a split file).
    """
    if not text.strip():
        raise SkvmError.at(Location(filename, 1, 1), "empty input: expected 'skill @name { … }'")
    return _parse(text, "start", filename, line_offset)


def parse_op(text: str, filename: str = "<input>") -> Op:
    """Parse a single op."""
    return _parse(text, "op_start", filename)


def parse_type(text: str, filename: str = "<input>") -> Type:
    """Parse a type (``list<path>``)."""
    return _parse(text, "type_start", filename)


def parse_attribute(text: str, filename: str = "<input>") -> Any:
    """Parse an attribute value."""
    return _parse(text, "attr_start", filename)
