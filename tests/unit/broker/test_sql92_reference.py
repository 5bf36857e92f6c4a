"""Property test: the compiled SQL92 predicate agrees with a plain transcription of upstream's Java
expression classes (``sql92_reference``) on random expressions and random message properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbitmq.broker.sql92 import Sql92Error, compile_sql92

from .sql92_reference import reference_matches

PROPS = ("a", "b", "c")
_numbers = st.sampled_from(
    [
        "0",
        "1",
        "5",
        "7",
        "2147483647",
        "2147483648",
        "9223372036854775807",
        "1.5",
        "5.",
        ".5",
        "3e2",
        "5L",
        "7.0",
    ]
)
_number_literals = st.one_of(_numbers, _numbers.map(lambda n: "-" + n))
_string_literals = st.sampled_from(["'x'", "'7'", "''", "'true'", "'it''s'", "' 5'", "'NaN'", "'5.0'"])
_bool_literals = st.sampled_from(["TRUE", "FALSE", "NULL"])
_props = st.sampled_from(PROPS)
_values = st.one_of(
    _props, _props, _number_literals, _string_literals, _bool_literals, _props.map(lambda p: "-" + p)
)
_comparisons = st.tuples(_values, st.sampled_from(["=", "<>", ">", ">=", "<", "<="]), _values).map(" ".join)
_in_lists = st.tuples(
    _props, st.sampled_from(["IN", "NOT IN"]), st.lists(_string_literals, min_size=1, max_size=3)
).map(lambda t: f"{t[0]} {t[1]} ({', '.join(t[2])})")
_bounds = st.one_of(_number_literals, _props)
_betweens = st.tuples(_values, st.sampled_from(["BETWEEN", "NOT BETWEEN"]), _bounds, _bounds).map(
    lambda t: f"{t[0]} {t[1]} {t[2]} AND {t[3]}"
)
_string_tests = st.tuples(
    st.one_of(_props, _string_literals),
    st.sampled_from(["CONTAINS", "NOT CONTAINS", "STARTSWITH", "NOT STARTSWITH", "ENDSWITH", "NOT ENDSWITH"]),
    st.sampled_from(["'x'", "''", "'5'", "'tr'", "'ue'"]),
).map(" ".join)
_null_tests = st.tuples(st.one_of(_props, _values), st.sampled_from(["IS NULL", "IS NOT NULL"])).map(" ".join)
_atoms = st.one_of(
    _comparisons, _comparisons, _in_lists, _betweens, _string_tests, _null_tests, _props, _bool_literals
)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(["AND", "OR"]), children).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"
        ),
        st.tuples(children, st.sampled_from(["AND", "OR"]), children).map(" ".join),  # precedence at work
        children.map(lambda c: f"NOT ({c})"),
        children.map(lambda c: f"NOT {c}"),
        st.tuples(children, _bool_literals).map(lambda t: f"({t[0]}) = {t[1]}"),
    )


expressions = st.recursive(_atoms, _extend, max_leaves=8)

_property_values = st.one_of(
    st.sampled_from(
        ["7", "5", "0", "-0", "1.5", "7.0", "NaN", " 5", "x", "", "true", "TRUE", "2147483648", "-2147483649",
         "9223372036854775808", "1e3", "0x10p0", "+5", "05", "Infinity", "5L", "1.5f", "\u0665", "it's"]
    ),
    st.integers(min_value=-(2**64), max_value=2**64).map(str),
    st.floats().map(repr),
    st.text(max_size=4),
)  # fmt: skip
messages = st.dictionaries(st.sampled_from(PROPS), _property_values, max_size=3)


@settings(max_examples=400, deadline=None)
@given(expressions, st.lists(messages, min_size=1, max_size=4))
def test_compiled_predicate_agrees_with_the_reference(
    expression: str, props_list: list[dict[str, str]]
) -> None:
    try:
        compiled = compile_sql92(expression)
    except Sql92Error:
        return  # invalid: nothing to evaluate (rejections are tested by tables)
    for props in props_list:
        assert compiled.matches(props) == reference_matches(compiled.tree, props), (str(compiled.tree), props)


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_the_generator_mostly_makes_valid_expressions() -> None:
    valid = 0
    samples = [expressions.example() for _ in range(200)]
    for text in samples:
        try:
            compile_sql92(text)
            valid += 1
        except Sql92Error:
            pass
    assert valid > 60, valid
