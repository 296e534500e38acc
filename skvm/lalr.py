"""A specialised LALR(1) loop over a Lark parser's table.

Lark's generic ``feed_token`` dominates the parse time of both of skvm's
grammars (SkIR text and the Markdown line kinds). This driver uses the same
table, lexer and callbacks, so it builds the same result and raises the same
errors, with reduce actions pre-resolved to ``(size, goto name, callback)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from lark import Lark, Token
from lark.exceptions import UnexpectedToken


class LalrDriver:
    """The LALR(1) loop over a Lark parser's table, with its callbacks.

    Same table, same callbacks and same errors as ``Lark.parse``; the loop is
    specialised (reduce actions pre-resolved to ``(size, goto name,
    callback)``) because Lark's generic ``feed_token`` dominated parse time.
    """

    def __init__(self, lark: Lark, callbacks: dict | None = None) -> None:
        from lark.parsers.lalr_analysis import Shift

        frontend = lark.parser
        inner = frontend.parser.parser
        table = inner.parse_table
        # Without callbacks of its own, the driver builds Lark's parse tree.
        callbacks = callbacks or inner.callbacks
        self.lexer = frontend.lexer
        self.lexer_conf = frontend.lexer_conf
        self.start_states = table.start_states
        self.end_states = table.end_states
        self.states: dict = {}
        for state, actions in table.states.items():
            compiled = {}
            # Lark names rules with Tokens, a str subclass whose __eq__ is Python
            # code: plain str keys and goto names keep every lookup in C.
            for term, (action, arg) in actions.items():
                if action is Shift:
                    compiled[str(term)] = (True, arg)
                else:
                    rule = (len(arg.expansion), str(arg.origin.name), callbacks[arg])
                    compiled[str(term)] = (False, rule)
            self.states[state] = compiled

    def parse(self, text: str, start: str) -> Any:
        """Parse ``text``, lexed by the Lark parser's lexer, from start rule ``start``."""
        from lark.lexer import LexerState, TextSlice

        return self.parse_tokens(self._tokens(LexerState(TextSlice(text, 0, len(text)))), start)

    def parse_tokens(self, tokens: Iterable[Token], start: str) -> Any:
        """Parse ``tokens`` (objects with a ``type``) ending with one of type ``$END``.

        For a caller with a lexer of its own for the grammar's terminals.
        """
        states = self.states
        end_state = self.end_states[start]
        state = self.start_states[start]  # always state_stack[-1]
        state_stack = [state]
        value_stack: list = []
        for token in tokens:
            kind = token.type
            while True:
                try:
                    shift, arg = states[state][kind]
                except KeyError:
                    raise self._unexpected(token, state) from None
                if shift:
                    state = arg
                    state_stack.append(state)
                    value_stack.append(token)
                    break
                size, origin, callback = arg
                if size:
                    children = value_stack[-size:]
                    del state_stack[-size:]
                    del value_stack[-size:]
                else:
                    children = []
                value_stack.append(callback(children))
                state = states[state_stack[-1]][origin][1]
                state_stack.append(state)
                if state == end_state and kind == "$END":
                    return value_stack[-1]
        raise AssertionError("the token stream always ends with $END")  # pragma: no cover

    def _tokens(self, lexer_state) -> Iterator[Token]:
        """The lexer's tokens, then ``$END`` (placed at the last token)."""
        token = None
        for token in self.lexer.lex(lexer_state, None):
            yield token
        yield Token.new_borrow_pos("$END", "", token) if token else Token("$END", "", 0, 1, 1)

    def _unexpected(self, token: Token, state: Any) -> UnexpectedToken:
        expected = {s for s in self.states[state] if s.isupper()}
        return UnexpectedToken(token, expected)
