"""Compile a checked SQL92 tree into one Python predicate over a message's properties.

Every node becomes a closure, evaluated with upstream's rules (``ComparisonExpression``, ``LogicExpression``,
``UnaryExpression`` in apache/rocketmq's ``filter`` module):

- three-valued logic: a condition is TRUE, FALSE or null (unknown); ``AND``/``OR`` go left to right and stop
  early the way upstream's do; ``NOT null`` is null; only TRUE matches.
- a comparison with a null side is null (``a > 5`` with no ``a``), except ``=``: null on the left is null,
  null on the right is FALSE, both null is TRUE; ``IS [NOT] NULL`` is never null; ``IN`` with no property is
  null, ``CONTAINS``/``STARTSWITH``/``ENDSWITH`` FALSE (also for an empty search string), even negated.
- when upstream would throw (a property that is not a number compared with one), the whole evaluation stops
  and the message does not match, whatever the other branches say.

The common shapes (property against a constant, ``IN``, ``IS NULL``) get closures of their own that skip the
generic comparator; a hypothesis test checks the whole compiler against a plain interpreter.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

from orbitmq.broker.sql92.javaops import (
    INT_MAX,
    LONG_MAX,
    Abort,
    Comparator,
    comparator,
    double_compare,
    java_parse_double,
    parser_for,
)
from orbitmq.broker.sql92.nodes import (
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
    StringTest,
    kind_of,
)

__all__ = ["Predicate", "compile_predicate"]

Props = Mapping[str, str]
Predicate = Callable[[Props], bool]
_Value = Callable[[Props], object]
_Condition = Callable[[Props], "bool | None"]

_TESTS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_NUMBERS: Final = frozenset({Kind.INTEGER, Kind.LONG, Kind.DOUBLE})
_NO_CONSTANT: Final = object()


def compile_predicate(root: Node) -> Predicate:
    """``props → bool``: True only when ``root`` evaluates to TRUE (null, FALSE and errors do not match)."""
    condition = _condition(root)

    def matches(props: Props) -> bool:
        try:
            return condition(props) is True
        except Abort:
            return False

    return matches


def _constant(node: Node) -> object:
    """The value of a literal or of ``-`` applied to one, else ``_NO_CONSTANT``."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Negate):
        inner = _constant(node.operand)
        if inner is _NO_CONSTANT:
            return _NO_CONSTANT
        return -inner if kind_of(node) in _NUMBERS else None  # type: ignore[operator]
    return _NO_CONSTANT


def _value(node: Node) -> _Value:
    const = _constant(node)
    if const is not _NO_CONSTANT:
        return lambda props: const
    if isinstance(node, Property):
        name = node.name
        return lambda props: props.get(name)
    if isinstance(node, Negate):
        inner = _value(node.operand)
        if kind_of(node) in _NUMBERS:
            return lambda props: None if (v := inner(props)) is None else -v  # type: ignore[operator]
        return lambda props: (inner(props), None)[1]  # evaluated for its errors, then null
    return _condition(node)


def _condition(node: Node) -> _Condition:
    if isinstance(node, Literal):
        value = node.value
        assert value is None or isinstance(value, bool)
        return lambda props: value
    if isinstance(node, BooleanCast):
        name = node.operand.name
        return lambda props: None if props.get(name) is None else False  # a string is not a Boolean
    if isinstance(node, Not):
        inner = _condition(node.operand)
        return lambda props: None if (r := inner(props)) is None else not r
    if isinstance(node, Logic):
        return _logic(node)
    if isinstance(node, Equal):
        return _equal(node)
    if isinstance(node, Compare):
        return _compare(node)
    if isinstance(node, InList):
        return _in_list(node)
    if isinstance(node, StringTest):
        return _string_test(node)
    raise AssertionError(f"not a condition: {node}")


def _logic(node: Logic) -> _Condition:
    parts = tuple(_condition(o) for o in node.operands)
    decisive = node.op == "OR"  # OR stops at the first TRUE, AND at the first FALSE
    if len(parts) == 2:
        first, second = parts

        def evaluate_two(props: Props) -> bool | None:
            a = first(props)
            if a is decisive:
                return decisive
            b = second(props)
            if b is decisive:
                return decisive
            return None if a is None or b is None else not decisive

        return evaluate_two

    def evaluate(props: Props) -> bool | None:
        unknown = False
        for part in parts:
            r = part(props)
            if r is decisive:
                return decisive
            if r is None:
                unknown = True
        return None if unknown else not decisive

    return evaluate


def _equal(node: Equal) -> _Condition:
    left, right = node.left, node.right
    const = _constant(right)
    if isinstance(left, Property) and const is None:  # IS NULL
        name = left.name
        return lambda props: props.get(name) is None
    if isinstance(left, Property) and const is not _NO_CONSTANT and kind_of(right) is not Kind.DOUBLE:
        name, parse = left.name, _string_parser(kind_of(right))
        return lambda props: None if (v := props.get(name)) is None else parse(v) == const
    lf, rf = _value(left), _value(right)
    compare = comparator(kind_of(left), kind_of(right))

    def evaluate(props: Props) -> bool | None:
        lv, rv = lf(props), rf(props)
        if lv is None:
            return True if rv is None else None
        if rv is None:
            return False
        return compare(lv, rv) == 0

    return evaluate


def _string_parser(kind: Kind) -> Callable[[str], object]:
    return (lambda s: s) if kind is Kind.STRING else parser_for(kind)


def _compare(node: Compare) -> _Condition:
    test = _TESTS[node.op]
    left, right = node.left, node.right
    lk, rk = kind_of(left), kind_of(right)
    fast = _compare_property_with_constant(test, left, right)
    if fast is not None:
        return fast
    lf, rf = _value(left), _value(right)
    compare: Comparator = comparator(lk, rk)
    if lk is Kind.STRING and rk is Kind.STRING:  # two properties: both read as doubles
        compare = _as_doubles

    def evaluate(props: Props) -> bool | None:
        lv = lf(props)
        if lv is None:
            return None
        rv = rf(props)
        if rv is None:
            return None
        return test(compare(lv, rv), 0)

    return evaluate


def _compare_property_with_constant(
    test: Callable[[Any, Any], bool], left: Node, right: Node
) -> _Condition | None:
    """``prop OP number`` / ``number OP prop`` with a plain comparison of the parsed property."""
    if isinstance(left, Property):
        prop, const, const_kind, flipped = left, _constant(right), kind_of(right), False
    elif isinstance(right, Property):
        prop, const, const_kind, flipped = right, _constant(left), kind_of(left), True
    else:
        return None
    if const is _NO_CONSTANT or const_kind not in _NUMBERS or const == 0.0:
        return None  # the generic path handles the rest (and -0.0 vs 0.0)
    name, parse = prop.name, parser_for(const_kind)
    if const_kind is not Kind.DOUBLE:  # an integer: plain digits are parsed at once, the rest the Java way
        high = INT_MAX if const_kind is Kind.INTEGER else LONG_MAX

        def evaluate_integer(props: Props) -> bool | None:
            v = props.get(name)
            if v is None:
                return None
            x = int(v) if v.isdecimal() else parse(v)
            if x > high:  # type: ignore[operator]
                raise Abort(f"out of range: {v!r}")
            return test(const, x) if flipped else test(x, const)

        return evaluate_integer
    nan_order = test(0, 1) if flipped else test(1, 0)  # Java puts NaN above every number

    def evaluate(props: Props) -> bool | None:
        v = props.get(name)
        if v is None:
            return None
        x = parse(v)
        if x != x:
            return nan_order
        return test(const, x) if flipped else test(x, const)

    return evaluate


def _as_doubles(a: object, b: object) -> int:
    return double_compare(java_parse_double(str(a)), java_parse_double(str(b)))


def _in_list(node: InList) -> _Condition:
    name, values, negated = node.operand.name, node.values, node.negated
    return lambda props: None if (v := props.get(name)) is None else (v in values) != negated


def _string_test(node: StringTest) -> _Condition:
    search, negated = node.search, node.negated
    if not search:
        return lambda props: False  # upstream: an empty search string never matches, negated or not
    method: Callable[[str, str], bool] = {
        "CONTAINS": str.__contains__,
        "STARTSWITH": str.startswith,
        "ENDSWITH": str.endswith,
    }[node.op]
    operand = _value(node.operand)

    def evaluate(props: Props) -> bool:
        v = operand(props)
        if not isinstance(v, str):  # null, a number, a boolean: FALSE
            return False
        return method(v, search) != negated

    return evaluate
