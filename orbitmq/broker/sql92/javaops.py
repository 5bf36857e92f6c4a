"""Java's value semantics as upstream's SQL92 filter applies them (``ComparisonExpression.__compare``).

Message properties are strings; comparing one with a number parses it the Java way, with the *number's*
class: ``Integer.valueOf`` (32-bit, no blanks), ``Long.valueOf`` or ``Double.valueOf`` (blanks trimmed,
``NaN``/``Infinity``, hex, an ``f``/``d`` suffix). A string that does not parse makes upstream throw: the
whole evaluation stops and the message does not match (:class:`Abort`). Doubles compare the way
``Double.compareTo`` does (``-0.0 < 0.0``, ``NaN`` equal to itself and above everything).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Final

from orbitmq.broker.sql92.nodes import Kind

__all__ = [
    "INT_MAX",
    "LONG_MAX",
    "Abort",
    "Comparator",
    "comparator",
    "double_compare",
    "java_parse_boolean",
    "java_parse_double",
    "java_parse_int",
    "java_parse_long",
    "parser_for",
]

INT_MIN: Final = -(2**31)
INT_MAX: Final = 2**31 - 1
LONG_MIN: Final = -(2**63)
LONG_MAX: Final = 2**63 - 1

#: ``Double.valueOf`` after trimming: the decimal and the hexadecimal forms, with an optional type suffix.
_JAVA_DECIMAL: Final = re.compile(
    r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?)", re.ASCII
)
_JAVA_HEX: Final = re.compile(
    r"([+-]?0[xX](?:[0-9a-fA-F]+\.?|[0-9a-fA-F]*\.[0-9a-fA-F]+)[pP][+-]?[0-9]+)[fFdD]?", re.ASCII
)
#: ``String.trim`` removes every char ≤ U+0020 at both ends.
_TRIMMED: Final = "".join(chr(c) for c in range(0x21))


class Abort(Exception):
    """Upstream would throw here (bad number, ClassCastException): the message does not match."""


Comparator = Callable[[object, object], int]


def _parse_integer(text: str, low: int, high: int) -> int:
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits.isdecimal():  # Nd digits only: no blanks, no "_" (which int() would accept)
        raise Abort(f"not an integer: {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise Abort(f"out of range: {text!r}")
    return value


def java_parse_int(text: str) -> int:
    return _parse_integer(text, INT_MIN, INT_MAX)


def java_parse_long(text: str) -> int:
    return _parse_integer(text, LONG_MIN, LONG_MAX)


def java_parse_double(text: str) -> float:
    s = text.strip(_TRIMMED)
    if _JAVA_DECIMAL.fullmatch(s):
        if s[-1] in "fFdD" and not s.endswith("Infinity"):
            s = s[:-1]
        return float(s)
    m = _JAVA_HEX.fullmatch(s)
    if m:
        return float.fromhex(m.group(1))
    raise Abort(f"not a double: {text!r}")


def java_parse_boolean(text: str) -> bool:
    """``Boolean.valueOf``: true iff ``"true"`` ignoring case; anything else is false, never an error."""
    return text.isascii() and text.lower() == "true"


def parser_for(kind: Kind) -> Callable[[str], object]:
    """How a property string is converted to compare with a value of ``kind``."""
    return {
        Kind.INTEGER: java_parse_int,
        Kind.LONG: java_parse_long,
        Kind.DOUBLE: java_parse_double,
        Kind.BOOLEAN: java_parse_boolean,
    }[kind]


def double_compare(a: float, b: float) -> int:
    """``Double.compare``: numeric order, then ``-0.0 < 0.0``, and ``NaN`` equal to itself, above all."""
    if a < b:
        return -1
    if a > b:
        return 1
    a_nan, b_nan = a != a, b != b
    if a_nan or b_nan:
        return int(a_nan) - int(b_nan)
    if a == 0.0:  # 0.0 vs -0.0
        return int(math.copysign(1.0, a) > 0) - int(math.copysign(1.0, b) > 0)
    return 0


def _plain(a: object, b: object) -> int:
    return int(a > b) - int(a < b)  # type: ignore[operator]


def _as_doubles(a: object, b: object) -> int:
    return double_compare(float(a), float(b))  # type: ignore[arg-type]


def _class_cast(a: object, b: object) -> int:
    raise Abort("ClassCastException: Boolean compared with String")


def _less(a: object, b: object) -> int:
    return -1  # upstream: values of unrelated classes compare as "less"


_NUMBERS: Final = frozenset({Kind.INTEGER, Kind.LONG, Kind.DOUBLE})


def comparator(left: Kind, right: Kind) -> Comparator:
    """``__compare(lv, rv)`` for non-null values of these kinds (string conversion on, as the broker has).

    Same kind: natural order (doubles the Java way). Numbers of different kinds: as longs, or as doubles
    when either is one. A string against a number or a boolean is parsed as that kind, whichever side it
    is on, except ``Boolean`` on the left of a ``String``, which is upstream's ClassCastException. Any
    other mix is -1.
    """
    if left is right:
        return _as_doubles if left is Kind.DOUBLE else _plain
    if left in _NUMBERS and right in _NUMBERS:
        return _as_doubles if Kind.DOUBLE in (left, right) else _plain
    if left is Kind.STRING and (right in _NUMBERS or right is Kind.BOOLEAN):
        parse = parser_for(right)
        compare = comparator(right, right)
        return lambda a, b: compare(parse(a), b)  # type: ignore[arg-type]
    if right is Kind.STRING and left in _NUMBERS:
        parse = parser_for(left)
        compare = comparator(left, left)
        return lambda a, b: compare(a, parse(b))  # type: ignore[arg-type]
    if left is Kind.BOOLEAN and right is Kind.STRING:
        return _class_cast
    return _less
