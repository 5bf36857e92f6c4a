"""Topic validation, attributes and the TopicConfigManager (in memory)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.topics import (
    TBW102,
    Perm,
    TopicConfig,
    TopicConfigManager,
    TopicMessageType,
    apply_attribute_modifications,
    is_not_allowed_send_topic,
    is_system_topic,
    parse_attribute_modifications,
    validate_group,
    validate_topic,
)
from orbitmq.core.clock import FakeClock
from orbitmq.core.errors import BrokerError
from orbitmq.protocol.codes import ResponseCode


def manager(**cfg: object) -> TopicConfigManager:
    return TopicConfigManager("/nonexistent", BrokerConfig(**cfg), FakeClock())  # type: ignore[arg-type]


# -- names ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["T", "a-b_c|d%e", "%RETRY%g", "x" * 127, "%RETRY%" + "x" * 248])
def test_valid_topic_names(name: str) -> None:
    assert validate_topic(name) is None


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("", "is blank"),
        ("   ", "is blank"),
        ("a b", "contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"),
        ("a.b", "illegal characters"),
        ("tópico", "illegal characters"),
        ("x" * 128, "is longer than topic max length: 127"),
        ("%DLQ%" + "x" * 251, "DLQ or Retry topic"),
    ],
)
def test_invalid_topic_names_get_upstream_remarks(name: str, needle: str) -> None:
    remark = validate_topic(name)
    assert remark is not None and needle in remark


def test_group_names() -> None:
    assert validate_group("CG_1") is None
    assert validate_group("g" * 120) is None
    assert "longer than group max length: 120" in (validate_group("g" * 121) or "")
    assert "illegal" in (validate_group("a@b") or "")
    assert "blank" in (validate_group("") or "")


def test_system_and_forbidden_topics() -> None:
    for t in (TBW102, "SCHEDULE_TOPIC_XXXX", "RMQ_SYS_TRANS_HALF_TOPIC", "rmq_sys_anything", "BenchmarkTest"):
        assert is_system_topic(t)
    assert not is_system_topic("TopicTest")
    assert is_not_allowed_send_topic("SCHEDULE_TOPIC_XXXX")
    assert is_not_allowed_send_topic("RMQ_SYS_TRANS_OP_HALF_TOPIC")
    assert not is_not_allowed_send_topic(TBW102)
    assert not is_not_allowed_send_topic("TopicTest")


# -- attributes -------------------------------------------------------------------------------------------
def test_attribute_string_parsing() -> None:
    assert parse_attribute_modifications("+message.type=FIFO,-queue.type") == {
        "+message.type": "FIFO",
        "-queue.type": "",
    }
    assert parse_attribute_modifications(None) == {}
    for bad in ("message.type=FIFO", "queue.type", "+a=1,+a=2"):
        with pytest.raises(BrokerError):
            parse_attribute_modifications(bad)


def test_message_type_is_stored_without_the_sign() -> None:
    attrs = apply_attribute_modifications(True, {}, {"+message.type": "FIFO"})
    assert attrs == {"message.type": "FIFO"}
    assert TopicConfig("T", attributes=attrs).message_type is TopicMessageType.FIFO
    assert TopicConfig("T").message_type is TopicMessageType.NORMAL


@pytest.mark.parametrize(
    ("create", "current", "mods", "needle"),
    [
        (True, {}, {"-message.type": ""}, "only add attribute"),
        (True, {}, {"+nope": "1"}, "unsupported key: nope"),
        (True, {}, {"+message.type": "WEIRD"}, "value is not in set"),
        (False, {"queue.type": "SimpleCQ"}, {"+queue.type": "SimpleCQ"}, "unchangeable"),
        (False, {}, {"-message.type": ""}, "nonexistent key"),
        (False, {}, {"message.type": "FIFO"}, "wrong format key"),
        (True, {}, {"+queue.type": "BatchCQ"}, "value is not in set"),
    ],
)
def test_bad_attribute_modifications(
    create: bool, current: dict[str, str], mods: dict[str, str], needle: str
) -> None:
    with pytest.raises(BrokerError, match=needle) as info:
        apply_attribute_modifications(create, current, mods)
    assert info.value.code == ResponseCode.SYSTEM_ERROR


def test_update_and_delete_attributes() -> None:
    current = {"message.type": "FIFO"}
    assert apply_attribute_modifications(False, current, {"+message.type": "DELAY"}) == {
        "message.type": "DELAY"
    }
    assert apply_attribute_modifications(False, current, {"-message.type": ""}) == {}


# -- TopicConfig JSON -------------------------------------------------------------------------------------
def test_json_has_upstream_field_names() -> None:
    assert TopicConfig("T", 8, 8).to_json() == {
        "attributes": {},
        "order": False,
        "perm": 6,
        "readQueueNums": 8,
        "topicFilterType": "SINGLE_TAG",
        "topicName": "T",
        "topicSysFlag": 0,
        "writeQueueNums": 8,
    }


@given(
    st.builds(
        TopicConfig,
        topic_name=st.from_regex(r"[%|a-zA-Z0-9_-]{1,20}", fullmatch=True),
        read_queue_nums=st.integers(0, 1024),
        write_queue_nums=st.integers(0, 1024),
        perm=st.integers(0, 15),
        topic_filter_type=st.sampled_from(["SINGLE_TAG", "MULTI_TAG"]),
        topic_sys_flag=st.integers(0, 3),
        order=st.booleans(),
        attributes=st.dictionaries(st.sampled_from(["message.type"]), st.sampled_from(["FIFO", "NORMAL"])),
    )
)
def test_topic_config_json_round_trip(tc: TopicConfig) -> None:
    assert TopicConfig.from_json(tc.to_json()) == tc


def test_from_json_fills_upstream_defaults_and_rejects_bad_types() -> None:
    tc = TopicConfig.from_json({"topicName": "T"})
    assert (tc.read_queue_nums, tc.write_queue_nums, tc.perm) == (16, 16, 6)
    with pytest.raises(ValueError):
        TopicConfig.from_json({"topicName": "T", "perm": "6"})
    with pytest.raises(ValueError):
        TopicConfig.from_json({"readQueueNums": 1})


# -- the manager ------------------------------------------------------------------------------------------
def test_system_topics_at_start() -> None:
    m = manager()
    tbw = m.select_topic_config(TBW102)
    assert tbw is not None and tbw.perm == 7 and tbw.write_queue_nums == 8
    schedule = m.select_topic_config("SCHEDULE_TOPIC_XXXX")
    assert schedule is not None and schedule.read_queue_nums == 18
    for name in (
        "DefaultCluster",
        "broker-a",
        "rmq_sys_REVIVE_LOG_DefaultCluster",
        "RMQ_SYS_TRANS_HALF_TOPIC",
        "RMQ_SYS_TRANS_OP_HALF_TOPIC",
        "SELF_TEST_TOPIC",
        "OFFSET_MOVED_EVENT",
        "DefaultCluster_REPLY_TOPIC",
    ):
        assert m.contains(name), name
        assert m.is_system_topic(name), name
    revive = m.select_topic_config(m.revive_topic)
    assert revive is not None and revive.read_queue_nums == 8
    cluster = m.select_topic_config("DefaultCluster")
    assert cluster is not None and cluster.perm == 7
    assert not m.dirty


def test_no_template_when_auto_create_is_off() -> None:
    m = manager(auto_create_topic_enable=False)
    assert not m.contains(TBW102)
    assert m.create_topic_in_send("T", TBW102, 4) is None


def test_auto_create_in_send_caps_queues_and_drops_inherit() -> None:
    m = manager()
    events: list[tuple[str, TopicConfig | None]] = []
    m.add_listener(lambda t, c: events.append((t, c)))
    version = m.data_version
    tc = m.create_topic_in_send("T", TBW102, 4)
    assert tc is not None and (tc.read_queue_nums, tc.write_queue_nums, tc.perm) == (4, 4, 6)
    assert events == [("T", tc)]
    assert m.data_version.counter == version.counter + 1
    assert m.dirty
    big = m.create_topic_in_send("T2", TBW102, 64)
    assert big is not None and big.write_queue_nums == 8
    assert m.create_topic_in_send("T", TBW102, 2) is tc, "an existing topic is returned unchanged"
    assert len(events) == 2


def test_auto_create_from_a_non_inheritable_or_missing_template_fails() -> None:
    m = manager()
    assert m.create_topic_in_send("T", "TopicThatDoesNotExist", 4) is None
    m.update_topic_config(TopicConfig("Plain", 4, 4))
    assert m.create_topic_in_send("T", "Plain", 4) is None
    assert not m.contains("T")


def test_send_to_a_missing_retry_topic_creates_one_queue() -> None:
    m = manager(auto_create_topic_enable=False)
    tc = m.create_topic_in_send("%RETRY%G", TBW102, 4)
    assert tc is not None and (tc.write_queue_nums, tc.perm) == (1, 6)


def test_retry_and_dlq_topics() -> None:
    m = manager()
    retry = m.create_retry_topic("G")
    assert (retry.topic_name, retry.read_queue_nums, retry.write_queue_nums, retry.perm) == (
        "%RETRY%G",
        1,
        1,
        6,
    )
    assert m.create_retry_topic("G") is retry
    ordered = m.create_retry_topic("G", order=True)
    assert ordered.order and m.is_order_topic("%RETRY%G")
    dlq = m.create_dlq_topic("G")
    assert (dlq.topic_name, dlq.write_queue_nums, dlq.perm) == ("%DLQ%G", 1, 6)
    with pytest.raises(BrokerError) as info:
        m.create_retry_topic("bad group")
    assert info.value.code == ResponseCode.INVALID_PARAMETER


def test_admin_update_validates_like_upstream() -> None:
    m = manager()
    for tc, mods, needle in [
        (TopicConfig("bad topic"), None, "illegal characters"),
        (TopicConfig(TBW102), None, "conflict with system topic"),
        (TopicConfig("broker-a"), None, "conflict with system topic"),
        (TopicConfig("T", -1, 1), None, "negative"),
        (TopicConfig("T"), {"+message.type": "MIXED"}, "MIXED message type is not supported."),
    ]:
        with pytest.raises(BrokerError, match=needle) as info:
            m.update_topic_config(tc, mods)
        assert info.value.code == ResponseCode.INVALID_PARAMETER
    relaxed = manager(validate_system_topic_when_update_topic=False)
    assert relaxed.update_topic_config(TopicConfig(TBW102, 4, 4, perm=7)).write_queue_nums == 4


def test_update_with_attributes_and_idempotence() -> None:
    m = manager()
    events: list[str] = []
    m.add_listener(lambda t, c: events.append(t))
    tc = m.update_topic_config(TopicConfig("T", 4, 4), {"+message.type": "FIFO"})
    assert tc.attributes == {"message.type": "FIFO"}
    counter = m.data_version.counter
    same = m.update_topic_config(TopicConfig("T", 4, 4), {"+message.type": "FIFO"})
    assert same == tc and m.data_version.counter == counter, "no change, no new version"
    changed = m.update_topic_config(TopicConfig("T", 8, 8), {"+message.type": "DELAY"})
    assert changed.attributes == {"message.type": "DELAY"} and changed.write_queue_nums == 8
    kept = m.update_topic_config(TopicConfig("T", 8, 8, perm=4), {})
    assert kept.attributes == {"message.type": "DELAY"}, "no modification keeps the attributes"
    assert events == ["T", "T", "T"]


def test_delete_topic() -> None:
    m = manager()
    events: list[tuple[str, object]] = []
    m.add_listener(lambda t, c: events.append((t, c)))
    m.update_topic_config(TopicConfig("T"))
    counter = m.data_version.counter
    assert m.delete_topic_config("T") is not None
    assert m.delete_topic_config("T") is None
    assert m.data_version.counter == counter + 1
    assert events[-1] == ("T", None)


def test_failing_listener_does_not_break_the_change(caplog) -> None:
    m = manager()

    def boom(topic: str, config: object) -> None:
        raise RuntimeError("boom")

    m.add_listener(boom)
    assert m.create_topic_in_send("T", TBW102, 1) is not None
    assert m.contains("T")
    assert "listener failed" in caplog.text


def test_wrapper_is_the_register_broker_shape() -> None:
    m = manager()
    wrapper = m.topic_config_wrapper()
    assert set(wrapper) == {"dataVersion", "topicConfigTable"}
    assert wrapper["topicConfigTable"][TBW102]["perm"] == int(Perm.RW | Perm.INHERIT)
    assert set(wrapper["dataVersion"]) == {"counter", "stateVersion", "timestamp"}


def test_perm_helpers() -> None:
    from orbitmq.broker.topics import is_inherited, is_readable, is_writeable

    assert is_readable(6) and is_writeable(6) and not is_inherited(6)
    assert is_inherited(7) and not is_writeable(4) and not is_readable(2)
