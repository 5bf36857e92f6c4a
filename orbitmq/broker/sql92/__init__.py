"""SQL92 message selectors, as RocketMQ consumers subscribe with ``MessageSelector.bySql(...)``.

``compile_sql92(text)`` parses once (lark, LALR; upstream's grammar and checks) and returns a
:class:`Sql92Filter` whose ``matches(properties)`` is the compiled predicate the broker runs per message.
Semantics are upstream's, null handling and Java number parsing included: see :mod:`.parser` for the
syntax, :mod:`.compiler` for evaluation, :mod:`.javaops` for conversions, and ``docs/filters.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orbitmq.broker.sql92.compiler import Predicate, compile_predicate
from orbitmq.broker.sql92.nodes import Node, Sql92Error
from orbitmq.broker.sql92.parser import EXPRESSION_CHARS_MAX, NESTING_MAX, parse_sql92, parse_sql92_prefix

__all__ = [
    "EXPRESSION_CHARS_MAX",
    "NESTING_MAX",
    "Sql92Error",
    "Sql92Filter",
    "compile_sql92",
    "parse_sql92",
]


@dataclass(frozen=True, slots=True)
class Sql92Filter:
    """A compiled selector: ``matches(properties)`` is True when the message is wanted.

    ``ignored_tail`` is the text after the expression that upstream's parser never looks at (``LIKE 'x%'``
    in ``a LIKE 'x%'``, which upstream silently reads as ``a``): empty for a well-formed expression.
    """

    expression: str
    tree: Node
    matches: Predicate
    ignored_tail: str = ""

    def __call__(self, properties: Mapping[str, str]) -> bool:
        return self.matches(properties)


def compile_sql92(expression: str) -> Sql92Filter:
    """Parse and compile ``expression``; :class:`Sql92Error` (with what and where) when it is invalid."""
    tree, ignored_tail = parse_sql92_prefix(expression)
    return Sql92Filter(expression, tree, compile_predicate(tree), ignored_tail)
