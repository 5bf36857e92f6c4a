"""A deliberately plain interpreter of SQL92 trees, transcribing upstream's Java classes branch by branch.

It shares nothing with :mod:`orbitmq.broker.sql92.compiler` or ``javaops``: values carry their Java class,
``__compare`` is the upstream if-ladder, ``AND``/``OR`` are evaluated as upstream's *binary* expressions
(folding the flattened chains back), doubles compare by their IEEE bits as ``Double.compare`` does, and the
Java parsers are written out by hand. A Java exception is :class:`JavaException`; the broker then does not
match the message.
"""

from __future__ import annotations

import struct
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

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
)

__all__ = ["JavaException", "reference_matches"]


class JavaException(Exception):
    pass


@dataclass(frozen=True)
class J:
    """A Java object: its class name and value."""

    cls: str  # "String", "Integer", "Long", "Double", "Boolean"
    v: object


_CLASS = {Kind.STRING: "String", Kind.INTEGER: "Integer", Kind.LONG: "Long", Kind.DOUBLE: "Double",
          Kind.BOOLEAN: "Boolean"}  # fmt: skip


def reference_matches(node: Node, props: Mapping[str, str]) -> bool:
    """ExpressionMessageFilter.isMatchedByCommitLog: evaluate, a throw or a non-TRUE result is no match."""
    try:
        result = _eval(node, props)
    except JavaException:
        return False
    return result is not None and result.cls == "Boolean" and result.v is True


# -- Java parsing ---------------------------------------------------------------------------------------------
def _parse_int(s: str, bits: int) -> int:
    if not s:
        raise JavaException("NumberFormatException: empty")
    sign, i = 1, 0
    if s[0] in "+-":
        sign, i = (-1 if s[0] == "-" else 1), 1
        if len(s) == 1:
            raise JavaException("NumberFormatException: lone sign")
    value = 0
    for ch in s[i:]:
        if unicodedata.category(ch) != "Nd":
            raise JavaException(f"NumberFormatException: {s!r}")
        value = value * 10 + unicodedata.decimal(ch)
    value *= sign
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise JavaException(f"NumberFormatException: {s!r} out of range")
    return value


def _digits(text: str, i: int, alphabet: str) -> int:
    while i < len(text) and text[i] in alphabet:
        i += 1
    return i


def _parse_double(s: str) -> float:
    """Double.valueOf, written out: trim, sign, NaN/Infinity, hex or decimal, exponent, f/d suffix."""
    t = s
    while t and ord(t[0]) <= 32:
        t = t[1:]
    while t and ord(t[-1]) <= 32:
        t = t[:-1]
    negative = t[:1] == "-"
    rest = t[1:] if t[:1] in ("+", "-") else t
    if rest in ("NaN", "Infinity"):
        value = float(rest.lower()[:3])
        return -value if negative else value
    dec, hexa = "0123456789", "0123456789abcdefABCDEF"
    if rest[:2] in ("0x", "0X"):
        i = _digits(rest, 2, hexa)
        whole = i - 2
        if i < len(rest) and rest[i] == ".":
            j = _digits(rest, i + 1, hexa)
            whole += j - i - 1
            i = j
        if whole == 0 or i >= len(rest) or rest[i] not in "pP":
            raise JavaException(f"NumberFormatException: {s!r}")
        j = i + 1 + (1 if rest[i + 1 : i + 2] in ("+", "-") and rest[i + 1 : i + 2] else 0)
        k = _digits(rest, j, dec)
        if k == j or rest[k:] not in ("", "f", "F", "d", "D"):
            raise JavaException(f"NumberFormatException: {s!r}")
        value = float.fromhex(rest[:k])
        return -value if negative else value
    i = _digits(rest, 0, dec)
    count = i
    if i < len(rest) and rest[i] == ".":
        j = _digits(rest, i + 1, dec)
        count += j - i - 1
        i = j
    if count == 0:
        raise JavaException(f"NumberFormatException: {s!r}")
    mantissa_end = i
    if i < len(rest) and rest[i] in "eE":
        j = i + 1 + (1 if rest[i + 1 : i + 2] in ("+", "-") and rest[i + 1 : i + 2] else 0)
        k = _digits(rest, j, dec)
        if k == j:
            raise JavaException(f"NumberFormatException: {s!r}")
        i = k
    if rest[i:] not in ("", "f", "F", "d", "D"):
        raise JavaException(f"NumberFormatException: {s!r}")
    value = float(rest[:mantissa_end] + (rest[mantissa_end:i] if i > mantissa_end else ""))
    return -value if negative else value


# -- Java comparisons -----------------------------------------------------------------------------------------
def _double_bits(x: float) -> int:
    if x != x:
        return 0x7FF8000000000000  # doubleToLongBits canonical NaN
    return struct.unpack(">q", struct.pack(">d", x))[0]


def _compare_to(lv: J, rv: J) -> int:
    """Comparable.compareTo of two objects of the same class."""
    a, b = lv.v, rv.v
    if lv.cls == "Double":
        assert isinstance(a, float) and isinstance(b, float)
        if a < b:
            return -1
        if a > b:
            return 1
        x, y = _double_bits(a), _double_bits(b)
        return 0 if x == y else (-1 if x < y else 1)
    if lv.cls == "String":
        assert isinstance(a, str) and isinstance(b, str)
        ua, ub = a.encode("utf-16-be"), b.encode("utf-16-be")
        return (ua > ub) - (ua < ub)
    return (a > b) - (a < b)  # type: ignore[operator]


def _java_compare(lv: J, rv: J) -> int:
    """ComparisonExpression.__compare with convertStringExpressions on."""
    lc, rc = lv.cls, rv.cls
    if lc != rc:
        if lc == "Boolean":
            if rc == "String":
                raise JavaException("ClassCastException: (String) of a Boolean")
            return -1
        elif lc == "Integer":
            if rc == "Long":
                lv = J("Long", lv.v)
            elif rc == "Double":
                lv = J("Double", float(lv.v))  # type: ignore[arg-type]
            elif rc == "String":
                rv = J("Integer", _parse_int(rv.v, 32))  # type: ignore[arg-type]
            else:
                return -1
        elif lc == "Long":
            if rc == "Integer":
                rv = J("Long", rv.v)
            elif rc == "Double":
                lv = J("Double", float(lv.v))  # type: ignore[arg-type]
            elif rc == "String":
                rv = J("Long", _parse_int(rv.v, 64))  # type: ignore[arg-type]
            else:
                return -1
        elif lc == "Double":
            if rc in ("Integer", "Long"):
                rv = J("Double", float(rv.v))  # type: ignore[arg-type]
            elif rc == "String":
                rv = J("Double", _parse_double(rv.v))  # type: ignore[arg-type]
            else:
                return -1
        elif lc == "String":
            s = lv.v
            assert isinstance(s, str)
            if rc == "Boolean":
                lv = J("Boolean", s.lower() == "true" and s.isascii())
            elif rc == "Integer":
                lv = J("Integer", _parse_int(s, 32))
            elif rc == "Long":
                lv = J("Long", _parse_int(s, 64))
            elif rc == "Double":
                lv = J("Double", _parse_double(s))
            else:
                return -1
        else:
            return -1
    return _compare_to(lv, rv)


def _java_equals(lv: J, rv: J) -> bool:
    if lv.cls != rv.cls:
        return False
    if lv.cls == "Double":
        return _double_bits(lv.v) == _double_bits(rv.v)  # type: ignore[arg-type]
    return lv.v == rv.v


# -- evaluation -----------------------------------------------------------------------------------------------
def _bool(value: bool | None) -> J | None:
    return None if value is None else J("Boolean", value)


def _as_bool(value: J | None) -> bool | None:
    return None if value is None else bool(value.v)


def _eval(node: Node, props: Mapping[str, str]) -> J | None:
    if isinstance(node, Literal):
        return None if node.value is None else J(_CLASS[node.kind], node.value)
    if isinstance(node, Property):
        raw = props.get(node.name)
        return None if raw is None else J("String", raw)
    if isinstance(node, Negate):
        v = _eval(node.operand, props)
        if v is None or v.cls not in ("Integer", "Long", "Double"):
            return None
        return J(v.cls, -v.v)  # type: ignore[operator]
    if isinstance(node, BooleanCast):
        v = _eval(node.operand, props)
        if v is None:
            return None
        return J("Boolean", bool(v.v) if v.cls == "Boolean" else False)
    if isinstance(node, Not):
        b = _as_bool(_eval(node.operand, props))
        return _bool(None if b is None else not b)
    if isinstance(node, Logic):
        acc = _eval(node.operands[0], props)
        for right in node.operands[1:]:
            acc = _binary_logic(node.op, acc, right, props)
        return acc
    if isinstance(node, Equal):
        return _equal(node, props)
    if isinstance(node, Compare):
        return _compare(node, props)
    if isinstance(node, InList):
        v = _eval(node.operand, props)
        if v is None or v.cls != "String":
            return None
        return _bool((v.v in node.values) != node.negated)
    if isinstance(node, StringTest):
        if not node.search:
            return _bool(False)
        v = _eval(node.operand, props)
        if v is None or v.cls != "String":
            return _bool(False)
        s = v.v
        assert isinstance(s, str)
        hit = {"CONTAINS": node.search in s, "STARTSWITH": s.startswith(node.search),
               "ENDSWITH": s.endswith(node.search)}[node.op]  # fmt: skip
        return _bool(hit != node.negated)
    raise AssertionError(node)


def _binary_logic(op: str, left: J | None, right_node: Node, props: Mapping[str, str]) -> J | None:
    lv = _as_bool(left)
    if op == "OR":
        if lv is True:
            return _bool(True)
        rv = _as_bool(_eval(right_node, props))
        if rv is True:
            return _bool(True)
        return _bool(None if lv is None or rv is None else False)
    if lv is False:
        return _bool(False)
    rv = _as_bool(_eval(right_node, props))
    if rv is False:
        return _bool(False)
    return _bool(None if lv is None or rv is None else True)


def _equal(node: Equal, props: Mapping[str, str]) -> J | None:
    lv, rv = _eval(node.left, props), _eval(node.right, props)
    if (lv is None) != (rv is None):
        return None if lv is None else _bool(False)
    if lv is None or rv is None:
        return _bool(True)
    if _java_equals(lv, rv):
        return _bool(True)
    return _bool(_java_compare(lv, rv) == 0)


def _compare(node: Compare, props: Mapping[str, str]) -> J | None:
    lv = _eval(node.left, props)
    if lv is None:
        return None
    rv = _eval(node.right, props)
    if rv is None:
        return None
    if lv.cls == "String" and rv.cls == "String":
        lv, rv = J("Double", _parse_double(lv.v)), J("Double", _parse_double(rv.v))  # type: ignore[arg-type]
    answer = _java_compare(lv, rv)
    return _bool({">": answer > 0, ">=": answer >= 0, "<": answer < 0, "<=": answer <= 0}[node.op])
