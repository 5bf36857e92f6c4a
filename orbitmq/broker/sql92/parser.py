"""Parse a SQL92 message selector into a :mod:`~orbitmq.broker.sql92.nodes` tree (lark, LALR).

The grammar is upstream's ``SelectorParser.jj`` (apache/rocketmq ``filter`` module) restated for lark:

- precedence from loose to tight: ``OR``; ``AND``; ``=``, ``<>``, ``IS [NOT] NULL``; ``>``, ``>=``, ``<``,
  ``<=``, ``[NOT] BETWEEN x AND y``, ``[NOT] IN ('s', ...)``, ``[NOT] CONTAINS|STARTSWITH|ENDSWITH 's'``;
  unary ``+``, ``-``, ``NOT``. ``NOT`` binds tighter than comparisons, so ``NOT a = 1`` is ``(NOT a) = 1``:
  write ``NOT (a = 1)``. There is no ``LIKE`` (upstream removed it) and no arithmetic.
- keywords are case-insensitive; identifiers are ``[a-zA-Z_$][a-zA-Z0-9_$]*``; strings are single-quoted
  with ``''`` for a quote; integers are ``0`` or ``[1-9][0-9]*`` with an optional ``L`` (``05`` is an
  error); floats need a ``.`` or an exponent; ``--`` comments end at a line break, ``/* */`` comments too.
- like upstream's parser, which never asks for the end of input, parsing stops at the first token that
  cannot continue a complete expression: ``a = 1 b = 2`` is ``a = 1``. That token must still be a token.

The build steps reject what upstream's expression constructors reject (``a > 'x'``, ``a = NULL``,
``TRUE = 1``, ``5 IN ('a')``, ``a BETWEEN 5 AND 1``, an integer beyond 64 bits, the float ``0.0`` ...).
"""

from __future__ import annotations

import functools
import re
from typing import Final

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from orbitmq.broker.sql92.javaops import LONG_MAX, Abort, comparator
from orbitmq.broker.sql92.nodes import (
    BOOLEAN_NODES,
    BooleanCast,
    Compare,
    Equal,
    InList,
    Kind,
    Literal,
    Logic,
    Negate,
    Node,
    Not,
    Property,
    Sql92Error,
    StringTest,
)

__all__ = ["EXPRESSION_CHARS_MAX", "GRAMMAR", "NESTING_MAX", "parse_sql92", "parse_sql92_prefix"]

#: Longest expression accepted (parsing costs ~20 µs a token and holds the event loop).
EXPRESSION_CHARS_MAX: Final = 16 * 1024
#: Deepest nesting accepted (AND/OR chains are flat and do not count): evaluation recurses per level.
NESTING_MAX: Final = 100

GRAMMAR: Final = r"""
?start: or_expr
?or_expr: and_expr
        | or_expr _OR and_expr -> or_
?and_expr: eq_expr
         | and_expr _AND eq_expr -> and_
?eq_expr: cmp_expr
        | eq_expr "=" cmp_expr -> eq
        | eq_expr "<>" cmp_expr -> ne
        | eq_expr _IS _NULL -> is_null
        | eq_expr _IS _NOT _NULL -> is_not_null
?cmp_expr: unary
         | cmp_expr ">" unary -> gt
         | cmp_expr ">=" unary -> ge
         | cmp_expr "<" unary -> lt
         | cmp_expr "<=" unary -> le
         | cmp_expr _CONTAINS STRING -> contains
         | cmp_expr _NOT _CONTAINS STRING -> not_contains
         | cmp_expr _STARTSWITH STRING -> startswith
         | cmp_expr _NOT _STARTSWITH STRING -> not_startswith
         | cmp_expr _ENDSWITH STRING -> endswith
         | cmp_expr _NOT _ENDSWITH STRING -> not_endswith
         | cmp_expr _BETWEEN unary _AND unary -> between
         | cmp_expr _NOT _BETWEEN unary _AND unary -> not_between
         | cmp_expr _IN "(" STRING ("," STRING)* ")" -> in_
         | cmp_expr _NOT _IN "(" STRING ("," STRING)* ")" -> not_in
?unary: "+" unary
      | "-" unary -> neg
      | _NOT unary -> not_
      | primary
?primary: STRING -> string
        | DECIMAL -> decimal
        | FLOAT -> float
        | _TRUE -> true
        | _FALSE -> false
        | _NULL -> null
        | ID -> prop
        | "(" or_expr ")"
_NOT: "NOT"i
_AND: "AND"i
_OR: "OR"i
_BETWEEN: "BETWEEN"i
_IN: "IN"i
_TRUE: "TRUE"i
_FALSE: "FALSE"i
_NULL: "NULL"i
_IS: "IS"i
_CONTAINS: "CONTAINS"i
_STARTSWITH: "STARTSWITH"i
_ENDSWITH: "ENDSWITH"i
DECIMAL: /0|[1-9][0-9]*[lL]?/
FLOAT.2: /[0-9]+\.[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+/
STRING: /'(?:''|[^'])*'/
ID: /[a-z_$][a-z0-9_$]*/i
WS: /[ \t\n\r\f]+/
%ignore WS
"""

_NULL_LITERAL: Final = Literal(None, Kind.NULL)
_NUMBER_KINDS: Final = frozenset({Kind.INTEGER, Kind.LONG, Kind.DOUBLE})
_COMPARE_OPS: Final = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_STRING_TESTS: Final = {
    "contains": ("CONTAINS", False),
    "not_contains": ("CONTAINS", True),
    "startswith": ("STARTSWITH", False),
    "not_startswith": ("STARTSWITH", True),
    "endswith": ("ENDSWITH", False),
    "not_endswith": ("ENDSWITH", True),
}


@functools.cache
def _lark() -> Lark:
    # The basic (not contextual) lexer: like JavaCC it always takes the longest token, so "ORb" is an
    # identifier even where only OR could follow.
    return Lark(GRAMMAR, parser="lalr", lexer="basic")


def parse_sql92(text: str) -> Node:
    """The checked tree of ``text``; :class:`Sql92Error` saying what is wrong and where."""
    return parse_sql92_prefix(text)[0]


def parse_sql92_prefix(text: str) -> tuple[Node, str]:
    """The checked tree of ``text`` and the text after the expression that upstream's parser ignores."""
    tree, end = _parse_tree(text)
    return _Builder().root(tree), text[end:].strip()


#: What the comment pass looks for: a string literal (skipped whole), a line or a block comment start.
_COMMENT_SCAN: Final = re.compile(r"'(?:''|[^'])*'|--|/\*")


def _blank_comments(text: str) -> str:
    """``text`` with its comments replaced by blanks (positions kept for error messages).

    A ``--`` comment needs a line break to end it (otherwise the dashes are minus signs, as upstream
    lexes them) and ``/*`` needs ``*/``. Done before lexing, in one linear pass: as a lexer rule the line
    comment would rescan the rest of the line at every dash of ``a > ------...5``.
    """
    out: list[str] = []
    pos = done = 0
    line_comments = True  # cleared once a "--" finds no line break: none after it can find one either
    while (m := _COMMENT_SCAN.search(text, pos)) is not None:
        token, start = m.group(), m.start()
        end = -1
        if token == "/*":
            close = text.find("*/", start + 2)
            end = -1 if close < 0 else close + 2
        elif token == "--" and line_comments:
            breaks = [i for i in (text.find("\n", start), text.find("\r", start)) if i >= 0]
            end = min(breaks) + 1 if breaks else -1
            line_comments = bool(breaks)
        if end < 0:
            pos = m.end() if token[0] == "'" else start + 1
            continue
        out += [text[done:start], " " * (end - start)]
        pos = done = end
    return "".join(out) + text[done:] if out else text


def _parse_tree(original: str) -> tuple[Tree[Token], int]:
    """The lark tree, and where the expression ends (``len(original)`` unless a tail is ignored)."""
    if len(original) > EXPRESSION_CHARS_MAX:
        raise Sql92Error(
            f"Invalid SQL92 expression: {len(original)} characters, more than {EXPRESSION_CHARS_MAX}"
        )
    parser = _lark()
    text = _blank_comments(original)
    try:
        return parser.parse(text), len(text)
    except UnexpectedToken as exc:
        if exc.token.type == "$END":
            raise _syntax_error(original, exc) from None
        # Upstream's parser stops before a token that cannot continue a complete expression: replay the
        # tokens before it and see whether the input could have ended there.
        ip = parser.parse_interactive("")
        for token in parser.lex(text):
            if token.start_pos >= exc.token.start_pos:
                break
            ip.feed_token(token)
        try:
            tree: Tree[Token] = ip.feed_eof()  # type: ignore[no-untyped-call]
        except UnexpectedInput:
            raise _syntax_error(original, exc) from None
        return tree, exc.token.start_pos or 0
    except UnexpectedInput as exc:
        raise _syntax_error(original, exc) from None


def _syntax_error(text: str, exc: UnexpectedInput) -> Sql92Error:
    if isinstance(exc, UnexpectedCharacters):
        what = f"unexpected character {text[exc.pos_in_stream or 0]!r}"
    elif isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        what = f"unexpected {str(exc.token)!r}"
    else:
        return Sql92Error(f"Invalid SQL92 expression: it ends too early: {text!r}")
    return Sql92Error(f"Invalid SQL92 expression: {what} at line {exc.line}, column {exc.column}")


def _unquote(token: Token) -> str:
    return str(token)[1:-1].replace("''", "'")


def _is_boolean(node: Node) -> bool:
    """Upstream ``instanceof BooleanExpression``: the TRUE/FALSE/NULL literals are ones too."""
    return isinstance(node, BOOLEAN_NODES) or (
        isinstance(node, Literal) and node.kind in (Kind.BOOLEAN, Kind.NULL)
    )


class _Builder:
    """Lark tree → checked node tree, mirroring upstream's expression constructors and their checks."""

    def root(self, tree: Tree[Token] | Token) -> Node:
        return self.boolean(self.node(tree, 0))

    def node(self, tree: Tree[Token] | Token, depth: int) -> Node:
        if depth > NESTING_MAX:
            raise Sql92Error(f"Invalid SQL92 expression: nested more than {NESTING_MAX} levels")
        assert isinstance(tree, Tree)
        data, kids = tree.data, tree.children
        if data in ("or_", "and_"):
            return self.logic(tree, depth)
        if data in ("string", "decimal", "float", "true", "false", "null", "prop"):
            return self.leaf(data, kids)
        sub = [self.node(k, depth + 1) for k in kids if isinstance(k, Tree)]
        strings = [_unquote(k) for k in kids if isinstance(k, Token)]
        if data in _COMPARE_OPS:
            return self.compare(_COMPARE_OPS[data], sub[0], sub[1])
        if data == "eq":
            return self.equal(sub[0], sub[1])
        if data == "ne":
            return Not(self.equal(sub[0], sub[1]))
        if data == "is_null":
            return Equal(sub[0], _NULL_LITERAL)
        if data == "is_not_null":
            return Not(Equal(sub[0], _NULL_LITERAL))
        if data == "neg":
            return Negate(sub[0])
        if data == "not_":
            return Not(self.boolean(sub[0]))
        if data in _STRING_TESTS:
            op, negated = _STRING_TESTS[data]
            return StringTest(op, sub[0], strings[0], negated)
        if data in ("between", "not_between"):
            return self.between(sub[0], sub[1], sub[2], data == "not_between")
        if data in ("in_", "not_in"):
            if not isinstance(sub[0], Property):
                raise Sql92Error(f"Invalid SQL92 expression: IN needs a property on its left, got {sub[0]}")
            return InList(sub[0], frozenset(strings), data == "not_in")
        raise AssertionError(f"unknown rule {data}")

    def leaf(self, data: str, kids: list[Tree[Token] | Token]) -> Node:
        token = kids[0] if kids else None
        if data == "string":
            assert isinstance(token, Token)
            return Literal(_unquote(token), Kind.STRING)
        if data == "decimal":
            value = int(str(token).rstrip("lL"))
            if value > LONG_MAX:
                raise Sql92Error(f"Invalid SQL92 expression: {token} does not fit in a 64-bit long")
            return Literal(value, Kind.INTEGER if value < 2**31 else Kind.LONG)
        if data == "float":
            number = float(str(token))
            if number == float("inf") or number == 0.0:  # upstream: above Double.MAX_VALUE / below MIN_VALUE
                raise Sql92Error(f"Invalid SQL92 expression: the float {token} is out of range")
            return Literal(number, Kind.DOUBLE)
        if data == "prop":
            return Property(str(token))
        return {"true": Literal(True, Kind.BOOLEAN), "false": Literal(False, Kind.BOOLEAN)}.get(
            data, _NULL_LITERAL
        )

    def logic(self, tree: Tree[Token], depth: int) -> Node:
        op = "OR" if tree.data == "or_" else "AND"
        rights: list[Tree[Token] | Token] = []
        left: Tree[Token] | Token = tree
        while isinstance(left, Tree) and left.data == tree.data:  # left-deep chain, walked without recursion
            rights.append(left.children[1])
            left = left.children[0]
        operands: list[Node] = []
        for part in [left, *reversed(rights)]:
            node = self.boolean(self.node(part, depth + 1))
            operands.extend(node.operands if isinstance(node, Logic) and node.op == op else (node,))
        return Logic(op, tuple(operands))

    def boolean(self, node: Node) -> Node:
        """Upstream ``asBooleanExpression``."""
        if _is_boolean(node):
            return node
        if isinstance(node, Property):
            return BooleanCast(node)
        raise Sql92Error(f"Invalid SQL92 expression: {node} is not a condition (it is not a boolean value)")

    def equal(self, left: Node, right: Node) -> Equal:
        for side in (left, right):
            if isinstance(side, Literal) and side.value is None:
                raise Sql92Error("Invalid SQL92 expression: NULL cannot be compared with =; use IS NULL")
        if (
            isinstance(left, Literal)
            and isinstance(right, Literal)
            and _is_boolean(left)
            and not _is_boolean(right)
        ):
            raise Sql92Error(f"Invalid SQL92 expression: {left} cannot be compared with {right}")
        return Equal(left, right)

    def compare(self, op: str, left: Node, right: Node) -> Compare:
        for side in (left, right):
            if (isinstance(side, Literal) and side.kind not in _NUMBER_KINDS) or _is_boolean(side):
                raise Sql92Error(
                    f"Invalid SQL92 expression: {side} cannot be compared with {op}: only numbers can"
                )
        return Compare(op, left, right)

    def between(self, value: Node, low: Node, high: Node, negated: bool) -> Node:
        if negated:
            return Logic("OR", (self.compare("<", value, low), self.compare(">", value, high)))
        if isinstance(low, Literal) and isinstance(high, Literal):
            if low.value is None or high.value is None:
                raise Sql92Error("Invalid SQL92 expression: the bounds of BETWEEN cannot be NULL")
            try:
                reversed_bounds = comparator(high.kind, low.kind)(high.value, low.value) < 0
            except Abort:
                reversed_bounds = True
            if reversed_bounds:
                raise Sql92Error(
                    f"Invalid SQL92 expression: BETWEEN {low} AND {high}: the low bound is above the high one"
                )
        return Logic("AND", (self.compare(">=", value, low), self.compare("<=", value, high)))
