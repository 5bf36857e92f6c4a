"""The client's per-topic mode cache and the bodies that feed it (pure)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbitmq.client.model import MessageQueue
from orbitmq.client.modes import (
    Assignment,
    RequestMode,
    RequestModeCache,
    TopicMode,
    parse_assignment,
    parse_mode_push,
    parse_mode_table,
    pop_retry_topics,
)
from orbitmq.core.errors import ProtocolError
from orbitmq.protocol.codes import RequestCode
from orbitmq.protocol.command import RemotingCommand

POP1, POP0, PULL = TopicMode(RequestMode.POP, 1), TopicMode(RequestMode.POP, 0), TopicMode(RequestMode.PULL)


def answer(body: object, **ext: str) -> RemotingCommand:
    return RemotingCommand(code=0, ext_fields=dict(ext), body=orjson.dumps(body))


def test_table_read_sets_stored_modes_and_defaults() -> None:
    cache = RequestModeCache()
    token = cache.begin_read()
    assert cache.apply_table(token, ["A", "B", "%RETRY%G"], {"A": POP1}, PULL) == ["A", "B"]
    assert cache.get("A") == POP1 and cache.get("B") == PULL
    assert cache.get("%RETRY%G") == PULL  # retry topics are PULL whatever a table says
    assert cache.get("Unknown") is None
    assert cache.apply_table(cache.begin_read(), ["A", "B"], {"A": POP1}, PULL) == []  # nothing new


def test_a_push_wins_over_a_read_that_was_under_way() -> None:
    cache = RequestModeCache()
    cache.apply_table(cache.begin_read(), ["A"], {}, PULL)
    token = cache.begin_read()  # a reconciliation starts...
    assert cache.apply_push("A", POP1)  # ...a push arrives while its answer travels...
    assert cache.apply_table(token, ["A"], {}, PULL) == []  # ...and the older answer does not undo it
    assert cache.get("A") == POP1
    assert not cache.apply_assignment(token, "A", Assignment(frozenset(), RequestMode.PULL))
    # A read started after the push applies normally.
    assert cache.apply_table(cache.begin_read(), ["A"], {}, PULL) == ["A"]


def test_assignment_answers_carry_the_mode_but_not_the_share() -> None:
    cache = RequestModeCache()
    mq = MessageQueue("A", "b", -1)
    assert cache.apply_assignment(cache.begin_read(), "A", Assignment(frozenset({mq}), RequestMode.POP))
    assert cache.get("A") == POP0
    cache.apply_push("A", POP1)
    assert not cache.apply_assignment(cache.begin_read(), "A", Assignment(frozenset({mq}), RequestMode.POP))
    assert cache.get("A") == POP1  # the known share is kept
    assert cache.share_known("A")
    other = RequestModeCache()  # a mode learned only from an assignment: its share is a guess
    other.apply_assignment(other.begin_read(), "B", Assignment(frozenset({mq}), RequestMode.POP))
    assert not other.share_known("B")
    # An empty answer says nothing about the mode.
    assert not cache.apply_assignment(cache.begin_read(), "A", Assignment(frozenset(), None))
    assert cache.get("A") == POP1


events = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.sampled_from(["A", "B"]), st.sampled_from([POP1, POP0, PULL])),
        st.tuples(st.just("fail"), st.sampled_from(["A", "B"]), st.none()),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(events=events)
def test_only_successful_answers_and_pushes_change_modes(
    events: list[tuple[str, str, TopicMode | None]],
) -> None:
    """Failures are modelled as what the rebalance does on one: no call at all. Whatever the interleaving,
    the cache always equals the last push per topic (the model)."""
    cache = RequestModeCache()
    model: dict[str, TopicMode] = {}
    for kind, topic, mode in events:
        if kind == "push" and mode is not None:
            cache.apply_push(topic, mode)
            model[topic] = mode
        assert {t: cache.get(t) for t in model} == model
    assert len(cache.history) <= len(events)


def test_parse_mode_table_of_our_broker_and_of_an_upstream_one() -> None:
    ours = answer(
        {"messageRequestModeMap": {"A": {"G": {"topic": "A", "consumerGroup": "G", "mode": "POP",
                                               "popShareQueueNum": 2}, "H": {"mode": "PULL"}}}},
        defaultMessageRequestMode="POP", defaultPopShareQueueNum="-1",
    )  # fmt: skip
    assert parse_mode_table(ours, "G") == (
        {"A": TopicMode(RequestMode.POP, 2)},
        TopicMode(RequestMode.POP, -1),
    )
    upstream = answer({"messageRequestModeMap": {}})
    assert parse_mode_table(upstream, "G") == ({}, PULL)
    with pytest.raises(ProtocolError):
        parse_mode_table(answer({"messageRequestModeMap": {"A": {"G": {"mode": "PUSH"}}}}), "G")
    with pytest.raises(ProtocolError):  # not "no modes": a broken answer, which must change nothing
        parse_mode_table(answer({}), "G")


def test_parse_assignment() -> None:
    body = {"messageQueueAssignments": [
        {"messageQueue": {"brokerName": "b", "queueId": -1, "topic": "A"}, "mode": "POP"}]}  # fmt: skip
    assert parse_assignment(answer(body)) == Assignment(
        frozenset({MessageQueue("A", "b", -1)}), RequestMode.POP
    )
    assert parse_assignment(answer({})) is None  # upstream's null: keep what you have
    assert parse_assignment(answer({"messageQueueAssignments": []})) == Assignment(frozenset(), None)
    mixed = {"messageQueueAssignments": [
        {"messageQueue": {"brokerName": "b", "queueId": 0, "topic": "A"}, "mode": "POP"},
        {"messageQueue": {"brokerName": "b", "queueId": 1, "topic": "A"}, "mode": "PULL"}]}  # fmt: skip
    with pytest.raises(ProtocolError):
        parse_assignment(answer(mixed))


def test_parse_mode_push() -> None:
    fields = {
        "consumerGroup": "G",
        "topic": "A",
        "mode": "POP",
        "popShareQueueNum": "1",
        "reason": "MODE_CHANGED",
    }
    push = parse_mode_push(RemotingCommand.request(RequestCode.NOTIFY_MESSAGE_REQUEST_MODE_CHANGED, fields))
    assert (push.group, push.topic, push.mode, push.reason) == ("G", "A", POP1, "MODE_CHANGED")
    with pytest.raises(ProtocolError):
        parse_mode_push(RemotingCommand.request(403, {"consumerGroup": "G", "topic": "A"}))


def test_pop_retry_topic_names() -> None:
    assert pop_retry_topics("G", "T") == ("%RETRY%G_T", "%RETRY%G+T")
