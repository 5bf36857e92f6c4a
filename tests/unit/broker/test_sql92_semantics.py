"""SQL92 selectors: a table of expressions by messages → match, with upstream's (apache/rocketmq ``filter``)
null semantics, Java number parsing and its quirks. Each expected value was derived from upstream's
expression classes (ComparisonExpression, LogicExpression, UnaryExpression), not from our code."""

from __future__ import annotations

import pytest

from orbitmq.broker.sql92 import compile_sql92

NONE: dict[str, str] = {}
M1 = {"a": "7", "b": "x", "c": "true", "s": "hello world"}
M2 = {"a": "3", "b": "y"}

TABLE: list[tuple[str, dict[str, str], bool]] = [
    # numbers: the property is parsed with the literal's Java class
    ("a > 5", M1, True),
    ("a > 5", M2, False),
    ("a > 5", NONE, False),  # null
    ("a > 5", {"a": "abc"}, False),  # Integer.valueOf throws: no match
    ("a > 5", {"a": "5.5"}, False),  # not an Integer either
    ("a > 5.0", {"a": "5.5"}, True),
    ("a > 5", {"a": " 6"}, False),  # Integer.valueOf does not trim
    ("a = 5.0", {"a": " 5 "}, True),  # Double.valueOf does
    ("a = 1", {"a": "+1"}, True),
    ("a = 1", {"a": "01"}, True),
    ("a = 1", {"a": "1_0"}, False),
    ("a = 1.5", {"a": "1.5f"}, True),  # Java's type suffix
    ("a = 10.0", {"a": "0xAp0"}, True),  # Java's hex floats
    ("a = 5.0", {"a": "5e0"}, True),
    ("a > 1.5", {"a": "NaN"}, True),  # Double.compareTo puts NaN above everything
    ("a < 1.5", {"a": "NaN"}, False),
    ("a > 1.5", {"a": "nan"}, False),  # Java spells it NaN only
    ("a > 5", {"a": "2147483648"}, False),  # beyond Integer: throws
    ("a > 2147483647", {"a": "2147483648"}, False),
    ("a > 2147483648", {"a": "2147483649"}, True),  # a Long literal: Long.valueOf
    ("a = 9223372036854775807", {"a": "9223372036854775807"}, True),
    ("a = -2147483648", {"a": "-2147483648"}, True),
    ("a > -1", {"a": "0"}, True),
    ("a >= 7 AND a <= 7", M1, True),
    ("5 < a", M1, True),
    ("a = 5", {"a": "5"}, True),
    ("a <> 5", {"a": "6"}, True),
    # two properties: ">" reads both as doubles, "=" compares the strings
    ("a > b", {"a": "10", "b": "9.5"}, True),
    ("a > b", {"a": "10", "b": "x"}, False),
    ("a > b", {"a": "10"}, False),
    ("a = b", {"a": "1", "b": "1.0"}, False),
    ("a = b", {"a": "q", "b": "q"}, True),
    # BETWEEN is >= AND <=, NOT BETWEEN is < OR >
    ("a BETWEEN 1 AND 10", M1, True),
    ("a BETWEEN 7 AND 7", M1, True),
    ("a BETWEEN 1 AND 10", NONE, False),
    ("a BETWEEN 1 AND 10", {"a": "abc"}, False),
    ("a NOT BETWEEN 1 AND 5", M1, True),
    ("a NOT BETWEEN 1 AND 10", M1, False),
    ("a NOT BETWEEN 1 AND 10", NONE, False),
    ("a BETWEEN -1 AND -5", {"a": "-3"}, False),  # not rejected (unary minus), never true
    # strings, IN
    ("b = 'x'", M1, True),
    ("b = 'x'", M2, False),
    ("a = 'it''s'", {"a": "it's"}, True),
    ("A = '7'", M1, False),  # property names are case-sensitive
    ("TAGS = 'tagA'", {"TAGS": "tagA"}, True),  # system properties are properties too
    ("a IN ('7', '8')", M1, True),
    ("a IN ('8')", M1, False),
    ("a IN ('7')", NONE, False),
    ("a NOT IN ('8')", M1, True),
    ("a NOT IN ('7')", NONE, False),  # null, not TRUE
    ("NOT (a IN ('8'))", NONE, False),
    # CONTAINS / STARTSWITH / ENDSWITH: FALSE (never null) without the property or with ''
    ("s CONTAINS 'lo w'", M1, True),
    ("s STARTSWITH 'hello'", M1, True),
    ("s ENDSWITH 'world'", M1, True),
    ("s NOT STARTSWITH 'world'", M1, True),
    ("s NOT CONTAINS 'x'", M1, True),
    ("s NOT CONTAINS 'x'", NONE, False),
    ("NOT (s CONTAINS 'x')", NONE, True),
    ("s CONTAINS ''", M1, False),
    ("s NOT CONTAINS ''", M1, False),
    # IS [NOT] NULL
    ("a IS NULL", NONE, True),
    ("a IS NULL", M1, False),
    ("a IS NOT NULL", NONE, False),
    ("a IS NOT NULL", M1, True),
    ("-a IS NULL", M1, True),  # minus a string is null
    ("-(a > 5) IS NULL", M1, True),  # minus a boolean too, but it is evaluated ...
    ("-(a > 5) IS NULL", {"a": "x"}, False),  # ... and its error stops everything
    ("a IS NULL OR a = 'hello'", NONE, True),
    ("a IS NULL OR a = 'hello'", {"a": "abc"}, False),
    # = with nulls: null left → null, null right → FALSE, both null → TRUE
    ("a = 'x'", NONE, False),
    ("NOT (a = 'x')", NONE, False),
    ("a <> 'x'", NONE, False),
    ("a <> 'x'", M2, True),
    ("'x' = z", NONE, False),
    ("NOT ('x' = z)", NONE, True),
    ("NOT (z = 'x')", NONE, False),
    ("a = b", NONE, True),
    ("NOT (a = z)", M1, True),
    ("NOT (z = a)", M1, False),
    # three-valued AND / OR / NOT
    ("z = 'q' OR b = 'x'", M1, True),
    ("z = 'q' OR b = 'q'", M1, False),
    ("NOT (z = 'q' OR b = 'q')", M1, False),
    ("NOT (z = 'q' AND b = 'q')", M1, True),
    ("z = 'q' AND b = 'x'", M1, False),
    ("a > 1 AND a < 3 OR a = 7", M1, True),
    # an error stops the whole evaluation, unless a branch before it decided
    ("b = 'x' OR a > 5", {"a": "abc", "b": "x"}, True),
    ("a > 5 OR b = 'x'", {"a": "abc", "b": "x"}, False),
    ("x = 1 OR TRUE", {"x": "q"}, False),
    ("TRUE OR x = 1", {"x": "q"}, True),
    # booleans
    ("TRUE", NONE, True),
    ("FALSE", NONE, False),
    ("NULL", NONE, False),
    ("NOT NULL", NONE, False),
    ("NOT FALSE", NONE, True),
    ("c = TRUE", M1, True),
    ("c = TRUE", {"c": "TRUE"}, True),
    ("c = FALSE", {"c": "yes"}, True),  # Boolean.valueOf: anything but "true" is false
    ("TRUE = c", M1, False),  # upstream's ClassCastException
    ("c", M1, False),  # a string used as a condition is FALSE ...
    ("NOT c", M1, True),  # ... so NOT of it is TRUE
    ("NOT c", NONE, False),
    ("(a > 5) = TRUE", M1, True),
    ("(a > 5) = TRUE", NONE, False),
    # NOT binds tighter than comparisons: (NOT a) = 7 compares a Boolean with an Integer
    ("NOT a = 7", M1, False),
    ("NOT (a = 7)", M1, False),
    ("NOT (a = 8)", M1, True),
    # syntax details
    ("a > 5 -- a comment\n", M1, True),
    ("a /* here */ > 5", M1, True),
    ("a = 7 b = 8", M1, True),  # upstream stops at the first token that cannot continue
    ("a > --5", M1, True),  # no line break: two minus signs
    ("a>5 and B is null AnD b='x'", M1, True),  # keywords in any case
]


@pytest.mark.parametrize(("expression", "props", "expected"), TABLE)
def test_expression_table(expression: str, props: dict[str, str], expected: bool) -> None:
    assert compile_sql92(expression).matches(props) is expected


def test_the_table_is_not_one_sided() -> None:
    assert 30 < sum(expected for _, _, expected in TABLE) < len(TABLE) - 30


def test_a_compiled_filter_is_reusable_and_callable() -> None:
    f = compile_sql92("a > 5 AND b = 'x'")
    assert f(M1) and not f(M2) and f(M1)
    assert f.expression == "a > 5 AND b = 'x'"
    assert str(f.tree) == "((a > 5) AND (b = 'x'))"
