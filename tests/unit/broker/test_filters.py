"""Subscription parsing (FilterAPI) and tag filtering (ExpressionMessageFilter semantics)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbitmq.broker.filters import (
    MATCH_ALL,
    SUB_ALL,
    MessageFilterFactory,
    SubscriptionData,
    SubscriptionParseError,
    build_subscription,
    is_tag_type,
    tag_code_filter,
    tag_exact_filter,
    unsupported_expression_error,
)
from orbitmq.core.errors import BrokerError, ProtocolError
from orbitmq.protocol.codes import ResponseCode
from orbitmq.protocol.record import java_string_hash, tags_code

tag_text = st.text(
    alphabet=st.characters(blacklist_characters="|", blacklist_categories=("Cs",)), max_size=12
)


@pytest.mark.parametrize("expr", [None, "", "*"])
def test_star_and_empty_subscribe_to_everything(expr: str | None) -> None:
    sub = build_subscription("T", expr, None, 7)
    assert sub.sub_string == SUB_ALL and sub.tags_set == () and sub.code_set == ()
    assert sub.sub_version == 7
    assert tag_code_filter(sub) is None
    assert tag_exact_filter(sub) is None


def test_tags_are_trimmed_deduplicated_and_hashed() -> None:
    sub = build_subscription("T", " a || b ||a|| ||c", "TAG")
    assert sub.tags_set == ("a", "b", "c")
    assert sub.code_set == tuple(java_string_hash(t) for t in ("a", "b", "c"))
    assert sub.sub_string == " a || b ||a|| ||c"


def test_known_java_hash_codes() -> None:
    # "TagA".hashCode() in Java
    assert build_subscription("T", "TagA").code_set == (2598919,)


@pytest.mark.parametrize("expr", ["||", "||||"])
def test_only_separators_is_a_parse_failure(expr: str) -> None:
    with pytest.raises(SubscriptionParseError) as info:
        build_subscription("T", expr)
    assert info.value.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED


def test_blank_tags_match_nothing_as_upstream() -> None:
    sub = build_subscription("T", " || ")
    flt = tag_code_filter(sub)
    assert sub.tags_set == () and flt is not None
    assert not flt(0) and not flt(java_string_hash("a"))


def test_code_filter_matches_subscribed_codes_only() -> None:
    flt = tag_code_filter(build_subscription("T", "a||b"))
    assert flt is not None
    assert flt(tags_code("a")) and flt(tags_code("b"))
    assert not flt(tags_code("c"))
    assert not flt(tags_code(None)), "a message without tags (code 0) matches only *"


def test_exact_filter_checks_the_tags_property() -> None:
    flt = tag_exact_filter(build_subscription("T", "a||b"))
    assert flt is not None
    assert flt({"TAGS": "a"})
    assert not flt({"TAGS": "c"})
    assert not flt({}), "a message without tags matches only *"
    assert not flt({"TAGS": ""})


def test_hash_collision_is_caught_by_the_exact_filter() -> None:
    # "Aa" and "BB" have the same Java hash code.
    assert java_string_hash("Aa") == java_string_hash("BB")
    sub = build_subscription("T", "Aa")
    code, exact = tag_code_filter(sub), tag_exact_filter(sub)
    assert code is not None and exact is not None
    assert code(tags_code("BB")) and not exact({"TAGS": "BB"})


def test_sql92_is_kept_unparsed_and_reported_unsupported() -> None:
    sub = build_subscription("T", "a > 5", "SQL92", 3)
    assert (sub.expression_type, sub.sub_string, sub.tags_set) == ("SQL92", "a > 5", ())
    error = unsupported_expression_error(sub)
    assert isinstance(error, BrokerError)
    assert error.code == ResponseCode.SYSTEM_ERROR
    assert error.remark == "The broker does not support consumer to filter message by SQL92"
    with pytest.raises(BrokerError):
        tag_code_filter(sub)
    with pytest.raises(BrokerError):
        tag_exact_filter(sub)
    assert unsupported_expression_error(build_subscription("T", "a")) is None


def test_empty_sql92_is_a_parse_failure() -> None:
    with pytest.raises(SubscriptionParseError, match="SQL92"):
        build_subscription("T", "", "SQL92")


def test_is_tag_type() -> None:
    assert is_tag_type(None) and is_tag_type("") and is_tag_type("TAG")
    assert not is_tag_type("SQL92")


def test_from_json_of_an_ali_ons_heartbeat() -> None:
    obj = {
        "topic": "T",
        "subString": "*",
        "classFilterMode": False,
        "tagsSet": [],
        "codeSet": [],
        "subVersion": 1795239044994,
    }
    sub = SubscriptionData.from_json(obj)
    assert sub == SubscriptionData("T", "*", (), (), 1795239044994, "TAG", False)


def test_from_json_of_a_java_heartbeat() -> None:
    obj = {
        "classFilterMode": False,
        "codeSet": [97, 98],
        "expressionType": "TAG",
        "subString": "a || b",
        "subVersion": 1700000000000,
        "tagsSet": ["a", "b"],
        "topic": "t",
    }
    sub = SubscriptionData.from_json(obj)
    assert sub.tags_set == ("a", "b") and sub.code_set == (97, 98)
    assert sub.to_json() == obj


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"subString": "*"},
        {"topic": ""},
        {"topic": "T", "tagsSet": "a"},
        {"topic": "T", "tagsSet": {}},
        {"topic": "T", "codeSet": ["x"]},
        {"topic": "T", "codeSet": [True]},
        {"topic": "T", "subVersion": "1"},
        {"topic": "T", "subString": 5},
    ],
)
def test_malformed_subscription_json_is_a_protocol_error(obj: object) -> None:
    with pytest.raises(ProtocolError):
        SubscriptionData.from_json(obj)


@given(st.lists(tag_text, max_size=6), st.integers(min_value=0, max_value=2**62))
def test_parse_json_round_trip(tags: list[str], version: int) -> None:
    expr = "||".join(tags)
    try:
        sub = build_subscription("T", expr, "TAG", version)
    except SubscriptionParseError:
        assert expr and set(expr) == {"|"}
        return
    assert SubscriptionData.from_json(sub.to_json()) == sub
    expected = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
    if sub.sub_string != SUB_ALL:
        assert list(sub.tags_set) == expected
        flt = tag_exact_filter(sub)
        assert flt is not None
        for tag in expected:
            assert flt({"TAGS": tag})


# -- MessageFilterFactory: the one entry point of pull and pop -------------------------------------------------
def test_factory_tag_subscriptions() -> None:
    factory = MessageFilterFactory(enable_property_filter=False)
    assert factory.build(build_subscription("T", "*")).is_all
    flt = factory.build(build_subscription("T", "TagA || TagB"))
    assert flt.matches(tags_code("TagA"), {"TAGS": "TagA"})
    assert not flt.matches(tags_code("TagC"), {"TAGS": "TagC"})
    assert not flt.matches(tags_code("TagA"), {"TAGS": "other tag, same hash"})
    assert MATCH_ALL.matches(0, {})


def test_factory_sql92_needs_the_property_filter() -> None:
    sub = build_subscription("T", "a > 5", "SQL92")
    with pytest.raises(BrokerError) as info:
        MessageFilterFactory(enable_property_filter=False).build(sub)
    assert info.value.code == ResponseCode.SYSTEM_ERROR
    flt = MessageFilterFactory(enable_property_filter=True).build(sub)
    assert flt.tag_filter is None  # SQL92 does not look at the tag code
    assert flt.matches(0, {"a": "6"}) and not flt.matches(0, {"a": "5"}) and not flt.matches(0, {})


@pytest.mark.parametrize(
    ("expr", "expression_type"), [("a >", "SQL92"), ("a > 1", "XPATH"), ("a > 'x'", "SQL92")]
)
def test_factory_refuses_what_does_not_compile(expr: str, expression_type: str) -> None:
    factory = MessageFilterFactory(enable_property_filter=True)
    sub = build_subscription("T", expr, expression_type)
    with pytest.raises(SubscriptionParseError) as info:
        factory.build(sub)
    assert info.value.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED
    assert info.value.remark.startswith("parse the consumer's subscription failed: ")
    with pytest.raises(SubscriptionParseError) as checked:  # CHECK_CLIENT_CONFIG: the compiler's words only
        factory.check(sub)
    assert not checked.value.remark.startswith("parse the")
    assert factory.compile_error(sub) == checked.value.remark
    # compile_error does not depend on the switch (upstream registers filter data either way)
    assert MessageFilterFactory(enable_property_filter=False).compile_error(sub) == checked.value.remark


def test_factory_compiles_each_expression_once_and_bounds_its_cache() -> None:
    factory = MessageFilterFactory(enable_property_filter=True, cache_size=2)
    subs = [build_subscription("T", f"a > {i}", "SQL92") for i in range(3)]
    first = factory.sql92(subs[0])
    assert factory.sql92(subs[0]) is first
    assert (factory.sql92_compiled, factory.sql92_cache_hits) == (1, 1)
    factory.sql92(subs[1])
    factory.sql92(subs[2])  # evicts a > 0, the least recently used
    assert factory.sql92(subs[0]) is not first and factory.sql92_compiled == 4
    with pytest.raises(SubscriptionParseError):
        factory.sql92(build_subscription("T", "a >", "SQL92"))
    with pytest.raises(SubscriptionParseError):
        factory.sql92(build_subscription("T", "a >", "SQL92"))
    assert factory.sql92_invalid == 1  # a failure is cached too
    assert factory.compile_error(build_subscription("T", "TagA")) is None
