"""subscriptionGroup.json on real files: schema, reload, backup fallback, a Java broker's file."""

from __future__ import annotations

import asyncio
import json
import os

from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.persist import PersistService
from orbitmq.broker.subscription_groups import SubscriptionGroupConfig, SubscriptionGroupManager
from orbitmq.broker.topics import TopicConfig, TopicConfigManager
from orbitmq.core.clock import FakeClock


def groups_path(root: str) -> str:
    return os.path.join(root, "config", "subscriptionGroup.json")


def test_file_schema_and_reload(tmp_path) -> None:
    clock = FakeClock()
    m = SubscriptionGroupManager(str(tmp_path), BrokerConfig(), clock)
    m.find_subscription_group_config("CG")
    m.update_subscription_group_config(
        SubscriptionGroupConfig("F", consume_message_orderly=True, retry_max_times=3)
    )
    m.update_forbidden("F", "T", 1, True)
    m.persist()
    with open(groups_path(str(tmp_path)), "rb") as f:
        obj = json.load(f)
    assert set(obj) == {"dataVersion", "forbiddenTable", "subscriptionGroupTable"}
    assert obj["subscriptionGroupTable"]["F"]["consumeMessageOrderly"] is True
    assert obj["forbiddenTable"] == {"F": {"T": 2}}
    again = SubscriptionGroupManager(str(tmp_path), BrokerConfig(), clock)
    assert again.load()
    assert again.all_configs() == m.all_configs()
    assert again.is_forbidden("F", "T", 1)
    assert again.data_version == m.data_version


def test_corrupt_main_file_falls_back_to_backup(tmp_path, caplog) -> None:
    m = SubscriptionGroupManager(str(tmp_path), BrokerConfig(), FakeClock())
    m.find_subscription_group_config("First")
    m.persist()
    m.find_subscription_group_config("Second")
    m.persist()
    with open(groups_path(str(tmp_path)), "wb") as f:
        f.write(b'{"subscriptionGroupTable": [')
    again = SubscriptionGroupManager(str(tmp_path), BrokerConfig(), FakeClock())
    assert again.load()
    assert again.contains("First") and not again.contains("Second")
    assert "corrupt" in caplog.text


def test_a_java_subscription_group_file_loads_and_round_trips(tmp_path) -> None:
    path = groups_path(str(tmp_path))
    os.makedirs(os.path.dirname(path))
    java_group = {
        "attributes": {},
        "brokerId": 0,
        "consumeBroadcastEnable": True,
        "consumeEnable": True,
        "consumeFromMinEnable": True,
        "consumeMessageOrderly": False,
        "consumeTimeoutMinute": 15,
        "groupName": "please_rename_unique_group_name",
        "groupRetryPolicy": {"type": "CUSTOMIZED"},
        "groupSysFlag": 0,
        "notifyConsumerIdsChangedEnable": True,
        "retryMaxTimes": 16,
        "retryQueueNums": 1,
        "whichBrokerWhenConsumeSlowly": 1,
    }
    with open(path, "w") as f:
        json.dump(
            {
                "dataVersion": {"counter": 2, "stateVersion": 0, "timestamp": 1700000000000},
                "forbiddenTable": {},
                "subscriptionGroupTable": {"please_rename_unique_group_name": java_group},
            },
            f,
        )
    m = SubscriptionGroupManager(str(tmp_path), BrokerConfig(), FakeClock())
    assert m.load()
    assert m.get("please_rename_unique_group_name") is not None
    m.persist()
    with open(path, "rb") as f:
        assert json.load(f)["subscriptionGroupTable"]["please_rename_unique_group_name"] == java_group


class Watched:
    """A Persistable wrapper that signals each completed write."""

    def __init__(self, inner: TopicConfigManager | SubscriptionGroupManager) -> None:
        self.inner = inner
        self.name = inner.name
        self.written = asyncio.Event()

    @property
    def dirty(self) -> bool:
        return self.inner.dirty

    async def persist_async(self) -> None:
        await self.inner.persist_async()
        self.written.set()


async def test_one_persist_service_for_all_config_files(tmp_path) -> None:
    clock = FakeClock()
    topic_manager = TopicConfigManager(str(tmp_path), BrokerConfig(), clock)
    group_manager = SubscriptionGroupManager(str(tmp_path), BrokerConfig(), clock)
    topics, groups = Watched(topic_manager), Watched(group_manager)
    service = PersistService("ConfigPersistService", [topics, groups], clock, interval_ms=10_000)
    await service.start()
    try:
        topic_manager.update_topic_config(TopicConfig("T"))
        group_manager.find_subscription_group_config("CG")
        service.wakeup()  # a handler asks for a prompt write after an admin change; no clock time passes
        await asyncio.wait_for(asyncio.gather(topics.written.wait(), groups.written.wait()), 10)
        assert not topics.dirty and not groups.dirty
    finally:
        await service.stop()
    assert os.path.exists(os.path.join(str(tmp_path), "config", "topics.json"))
    assert os.path.exists(groups_path(str(tmp_path)))
