"""SQL92 selectors that upstream's parser and expression constructors reject are rejected here too, with
a message that says what is wrong; the valid corner cases of its grammar are accepted."""

from __future__ import annotations

import pytest

from orbitmq.broker.sql92 import EXPRESSION_CHARS_MAX, NESTING_MAX, Sql92Error, compile_sql92, parse_sql92

INVALID = [
    ("", "ends too early"),
    ("   ", "ends too early"),
    ("-- only a comment\n", "ends too early"),
    ("a >", "ends too early"),
    ("(a = 1", "ends too early"),
    ("a = 1 AND", "ends too early"),
    ("a > 'x'", "cannot be compared"),  # only numbers may be ordered
    ("'x' <= a", "cannot be compared"),
    ("a > TRUE", "cannot be compared"),
    ("a > (b = 1)", "cannot be compared"),
    ("NOT a > 1", "cannot be compared"),  # (NOT a) > 1
    ("a = NULL", "NULL"),
    ("NULL <> a", "NULL"),
    ("TRUE = 1", "cannot be compared"),
    ("FALSE = 'x'", "cannot be compared"),
    ("5 IN ('a')", "IN needs a property"),
    ("(a) NOT IN ('a')", ""),  # parentheses are transparent: this one is valid, see below
    ("a IN ()", "unexpected"),
    ("a IN (1)", "unexpected"),
    ("a IN ('x' 'y')", "unexpected"),
    ("a BETWEEN 5 AND 1", "low bound"),
    ("a BETWEEN +5 AND 1", "low bound"),  # +5 is still a literal
    ("a BETWEEN 1 AND NULL", "NULL"),
    ("a BETWEEN 'a' AND 'b'", "cannot be compared"),
    ("a > 0.0", "out of range"),  # upstream: below Double.MIN_VALUE
    ("a > 1e-400", "out of range"),
    ("a > 1e400", "out of range"),
    ("a > 9223372036854775808", "64-bit"),
    ("'x'", "not a condition"),
    ("5", "not a condition"),
    ("-5", "not a condition"),
    ("-a", "not a condition"),
    ("a == 1", "unexpected"),
    ("a != 1", "unexpected character"),
    ("a CONTAINS b", "unexpected"),
    ("a CONTAINS 1", "unexpected"),
    ("05 = a", "not a condition"),  # "0" then "5": the selector is the literal 0
    ("a = 1 #", "unexpected character '#'"),  # the token after the expression must still be a token
    ("a IS x", "unexpected 'x'"),
    ("a.b = 1", "unexpected character"),
    ("a = 'open", "unexpected character"),
    ("a = 1 /* open", "unexpected character"),
]


@pytest.mark.parametrize(("expression", "reason"), [c for c in INVALID if c[1]])
def test_invalid_expressions_are_rejected_with_a_reason(expression: str, reason: str) -> None:
    with pytest.raises(Sql92Error) as info:
        compile_sql92(expression)
    message = str(info.value)
    assert message.startswith("Invalid SQL92 expression: ")
    assert reason in message, message


def test_syntax_errors_say_where() -> None:
    with pytest.raises(Sql92Error, match=r"unexpected 'y' at line 2, column 10"):
        compile_sql92("a = 1\nAND x IS y")


@pytest.mark.parametrize(
    "expression",
    [
        "(a) NOT IN ('a')",
        "a BETWEEN -5 AND 1",
        "1 = TRUE",
        "a > 5L",
        "a > .5e1",
        "a > 5.",
        "a > 5E3",
        "a = 1 b = 2",  # trailing tokens after a complete expression are ignored, as upstream
        "a = 0L",  # "a = 0", then the identifier L
        "a = 1 ORb = 2",  # ORb is one identifier
        "$x_1 = 'y'",
        "a > --5",
        "'x' CONTAINS 'x'",
        "NULL",
        "a > 4.9e-324",  # Double.MIN_VALUE itself is accepted
    ],
)
def test_valid_corner_cases(expression: str) -> None:
    compile_sql92(expression)


def test_long_and_or_chains_are_flat() -> None:
    tree = parse_sql92(" OR ".join(f"a = {i}" for i in range(1000)))
    assert len(tree.operands) == 1000  # type: ignore[union-attr]
    f = compile_sql92(" AND ".join(f"a <> {i}" for i in range(1000)))
    assert f.matches({"a": "1000"}) and not f.matches({"a": "999"})


def test_nesting_and_length_are_bounded() -> None:
    deep = "NOT " * (NESTING_MAX + 1) + "a"
    with pytest.raises(Sql92Error, match="nested more than"):
        compile_sql92(deep)
    compile_sql92("(" * 5000 + "a = 1" + ")" * 5000)  # parentheses alone do not nest nodes
    with pytest.raises(Sql92Error, match="characters"):
        compile_sql92("a = '" + "x" * EXPRESSION_CHARS_MAX + "'")


def test_many_dashes_do_not_take_quadratic_time() -> None:
    # A line comment needs a line break; the comment pass finds that out once, not once per dash. Either
    # way the expression is refused for its nesting; this test fails by timing out under pytest-timeout
    # only if the pass goes quadratic (16 K dashes were ~3 s with a lexer rule).
    with pytest.raises(Sql92Error, match="nested"):
        compile_sql92("a > " + "-" * (EXPRESSION_CHARS_MAX - 10) + "5")


@pytest.mark.parametrize(
    ("expression", "ignored"),
    [("a LIKE 'x%'", "LIKE 'x%'"), ("a = 1 b = 2", "b = 2"), ("a = 1 ", ""), ("a = 0L", "L")],
)
def test_the_ignored_tail_is_reported(expression: str, ignored: str) -> None:
    # Upstream silently reads "a LIKE 'x%'" as the condition "a" (which never matches): the broker logs it.
    assert compile_sql92(expression).ignored_tail == ignored
