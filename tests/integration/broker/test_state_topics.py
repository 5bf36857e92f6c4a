"""topics.json on real files: RocketMQ's schema, reload, backup fallback, file entries override built-ins."""

from __future__ import annotations

import json
import os

import pytest

from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.topics import TBW102, TopicConfig, TopicConfigManager
from orbitmq.core.clock import FakeClock
from orbitmq.core.errors import StoreError


def topics_path(root: str) -> str:
    return os.path.join(root, "config", "topics.json")


def test_topics_json_is_a_topic_config_serialize_wrapper(tmp_path) -> None:
    m = TopicConfigManager(str(tmp_path), BrokerConfig(), FakeClock())
    m.update_topic_config(TopicConfig("Orders", 4, 4), {"+message.type": "FIFO"})
    m.persist()
    with open(topics_path(str(tmp_path)), "rb") as f:
        obj = json.load(f)
    assert set(obj) == {"dataVersion", "topicConfigTable"}
    assert set(obj["dataVersion"]) == {"counter", "stateVersion", "timestamp"}
    orders = obj["topicConfigTable"]["Orders"]
    assert set(orders) == {
        "attributes",
        "order",
        "perm",
        "readQueueNums",
        "topicFilterType",
        "topicName",
        "topicSysFlag",
        "writeQueueNums",
    }
    assert orders["attributes"] == {"message.type": "FIFO"}
    assert obj["topicConfigTable"][TBW102]["perm"] == 7


def test_persist_then_reload_gives_the_same_state(tmp_path) -> None:
    clock = FakeClock()
    m = TopicConfigManager(str(tmp_path), BrokerConfig(), clock)
    m.create_topic_in_send("Auto", TBW102, 4)
    m.create_retry_topic("G")
    m.update_topic_config(TopicConfig("Admin", 2, 3, perm=4, order=True))
    m.update_topic_config(TopicConfig("Gone"))
    m.delete_topic_config("Gone")
    m.persist()
    again = TopicConfigManager(str(tmp_path), BrokerConfig(), clock)
    assert again.load()
    assert again.all_configs() == m.all_configs()
    assert not again.contains("Gone")
    assert again.data_version == m.data_version


def test_builtin_topics_come_back_at_start_as_upstream(tmp_path) -> None:
    m = TopicConfigManager(str(tmp_path), BrokerConfig(), FakeClock())
    m.delete_topic_config("SELF_TEST_TOPIC")
    m.persist()
    again = TopicConfigManager(str(tmp_path), BrokerConfig(), FakeClock())
    again.load()
    assert again.contains("SELF_TEST_TOPIC")


def test_file_entries_override_builtin_topics(tmp_path) -> None:
    m = TopicConfigManager(str(tmp_path), BrokerConfig(), FakeClock())
    m.update_topic_config(TopicConfig("T"))
    m.persist()
    # A later start with a different default queue count: the stored TBW102 wins, as upstream.
    again = TopicConfigManager(str(tmp_path), BrokerConfig(default_topic_queue_nums=2), FakeClock())
    assert again.select_topic_config(TBW102).write_queue_nums == 2  # type: ignore[union-attr]
    again.load()
    assert again.select_topic_config(TBW102).write_queue_nums == 8  # type: ignore[union-attr]
    assert again.contains("T")


def test_corrupt_main_file_falls_back_to_backup(tmp_path, caplog) -> None:
    m = TopicConfigManager(str(tmp_path), BrokerConfig(), FakeClock())
    m.update_topic_config(TopicConfig("First"))
    m.persist()
    m.update_topic_config(TopicConfig("Second"))
    m.persist()
    with open(topics_path(str(tmp_path)), "wb") as f:
        f.write(b"\x00\x00garbage")
    again = TopicConfigManager(str(tmp_path), BrokerConfig(), FakeClock())
    assert again.load()
    assert again.contains("First") and not again.contains("Second")
    assert "corrupt" in caplog.text


def test_empty_main_file_falls_back_to_backup(tmp_path) -> None:
    m = TopicConfigManager(str(tmp_path), BrokerConfig(), FakeClock())
    m.update_topic_config(TopicConfig("First"))
    m.persist()
    m.persist()
    open(topics_path(str(tmp_path)), "wb").close()
    again = TopicConfigManager(str(tmp_path), BrokerConfig(), FakeClock())
    assert again.load() and again.contains("First")


def test_both_copies_corrupt_is_an_error(tmp_path) -> None:
    path = topics_path(str(tmp_path))
    os.makedirs(os.path.dirname(path))
    for p in (path, path + ".bak"):
        with open(p, "wb") as f:
            f.write(b"{")
    with pytest.raises(StoreError):
        TopicConfigManager(str(tmp_path), BrokerConfig(), FakeClock()).load()


def test_a_java_topics_json_loads(tmp_path) -> None:
    path = topics_path(str(tmp_path))
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write(
            '{"dataVersion":{"counter":12,"stateVersion":0,"timestamp":1700000000000},'
            '"topicConfigTable":{"TopicTest":{"attributes":{},"order":false,"perm":6,"readQueueNums":4,'
            '"topicFilterType":"SINGLE_TAG","topicName":"TopicTest","topicSysFlag":0,"writeQueueNums":4}}}'
        )
    m = TopicConfigManager(str(tmp_path), BrokerConfig(), FakeClock())
    assert m.load()
    assert m.select_topic_config("TopicTest") == TopicConfig("TopicTest", 4, 4)
    assert m.data_version.counter == 12
