"""The syntax tree of a SQL92 message selector, one node type per upstream expression class.

Upstream (apache/rocketmq ``filter`` module) builds ActiveMQ-style expression objects; several of its rules
depend on *which class* an operand is, not on its value, so the tree keeps those distinctions:

- :class:`Literal` is a ``ConstantExpression``: string, integer (``Integer`` or ``Long``), double,
  ``TRUE``/``FALSE``/``NULL``. ``+x`` is ``x`` itself, so ``+5`` is still a literal, but ``-5`` is a
  :class:`Negate` (a unary expression): ``a BETWEEN 5 AND 1`` is rejected, ``a BETWEEN -1 AND -5`` is not.
- Boolean nodes (``BooleanExpression`` upstream) are every comparison, logic, ``IN``, ``CONTAINS`` ...
  node plus the ``TRUE``/``FALSE``/``NULL`` literals; a bare property used as a condition is wrapped in a
  :class:`BooleanCast`.

Each value node has a static :class:`Kind`: property values are strings (message properties are
``Map<String, String>``), literal kinds are known, and ``-x`` keeps a number's kind or is always null.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from orbitmq.core.errors import OrbitError

__all__ = [
    "BOOLEAN_NODES",
    "BooleanCast",
    "Compare",
    "Equal",
    "InList",
    "Kind",
    "Literal",
    "Logic",
    "Negate",
    "Node",
    "Not",
    "Property",
    "Sql92Error",
    "StringTest",
    "kind_of",
]


class Sql92Error(OrbitError):
    """An expression that is not a valid SQL92 message selector; the text says why and where."""


class Kind(enum.Enum):
    """The Java class a node's non-null value has at run time."""

    STRING = "String"
    INTEGER = "Integer"  # 32-bit
    LONG = "Long"  # 64-bit
    DOUBLE = "Double"
    BOOLEAN = "Boolean"
    NULL = "null"  # always null (NULL literal, -'x', -property)


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | int | float | bool | None
    kind: Kind

    def __str__(self) -> str:
        if self.value is None:
            return "NULL"
        if isinstance(self.value, bool):
            return "TRUE" if self.value else "FALSE"
        if isinstance(self.value, str):
            return "'" + self.value.replace("'", "''") + "'"
        return repr(self.value)


@dataclass(frozen=True, slots=True)
class Property:
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Node

    def __str__(self) -> str:
        return f"(-{self.operand})"


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node  # a boolean node

    def __str__(self) -> str:
        return f"(NOT {self.operand})"


@dataclass(frozen=True, slots=True)
class BooleanCast:
    """A property used as a condition: null when absent, else FALSE (a string is not a Boolean)."""

    operand: Property

    def __str__(self) -> str:
        return str(self.operand)


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # ">", ">=", "<", "<="
    left: Node
    right: Node

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


@dataclass(frozen=True, slots=True)
class Equal:
    """``=``; also ``IS NULL`` (``Equal(x, NULL)``, built without the ``=`` operand checks)."""

    left: Node
    right: Node

    def __str__(self) -> str:
        return f"({self.left} = {self.right})"


@dataclass(frozen=True, slots=True)
class InList:
    operand: Property
    values: frozenset[str]
    negated: bool

    def __str__(self) -> str:
        items = ", ".join(str(Literal(v, Kind.STRING)) for v in sorted(self.values))
        return f"({self.operand} {'NOT IN' if self.negated else 'IN'} ({items}))"


@dataclass(frozen=True, slots=True)
class StringTest:
    op: str  # "CONTAINS", "STARTSWITH", "ENDSWITH"
    operand: Node
    search: str
    negated: bool

    def __str__(self) -> str:
        return (
            f"({self.operand} {'NOT ' if self.negated else ''}{self.op} {Literal(self.search, Kind.STRING)})"
        )


@dataclass(frozen=True, slots=True)
class Logic:
    """``AND`` / ``OR`` chains, flattened (``a OR b OR c`` is one node): evaluation is left to right with
    upstream's three-valued short circuit, so flattening changes nothing but the recursion depth."""

    op: str  # "AND", "OR"
    operands: tuple[Node, ...]

    def __str__(self) -> str:
        return "(" + f" {self.op} ".join(str(o) for o in self.operands) + ")"


Node = Literal | Property | Negate | Not | BooleanCast | Compare | Equal | InList | StringTest | Logic

#: Upstream's ``BooleanExpression`` classes (TRUE/FALSE/NULL literals too, see :func:`is_boolean`).
BOOLEAN_NODES: Final = (Not, BooleanCast, Compare, Equal, InList, StringTest, Logic)

_NUMBER_KINDS: Final = frozenset({Kind.INTEGER, Kind.LONG, Kind.DOUBLE})


def kind_of(node: Node) -> Kind:
    """The static kind of a node's value."""
    if isinstance(node, Literal):
        return node.kind
    if isinstance(node, Property):
        return Kind.STRING
    if isinstance(node, Negate):
        inner = kind_of(node.operand)
        return inner if inner in _NUMBER_KINDS else Kind.NULL
    return Kind.BOOLEAN
