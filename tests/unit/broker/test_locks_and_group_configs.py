"""RebalanceLockManager (LOCK_BATCH_MQ/UNLOCK_BATCH_MQ) and SubscriptionGroupManager (in memory)."""

from __future__ import annotations

import pytest

from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.locks import MessageQueue, RebalanceLockManager
from orbitmq.broker.subscription_groups import SubscriptionGroupConfig, SubscriptionGroupManager
from orbitmq.core.clock import FakeClock
from orbitmq.core.errors import BrokerError, ProtocolError
from orbitmq.protocol.codes import ResponseCode

Q0, Q1, Q2 = (MessageQueue("T", "broker-a", q) for q in range(3))


# -- locks ------------------------------------------------------------------------------------------------
def test_lock_is_exclusive_until_it_expires() -> None:
    locks = RebalanceLockManager(60_000)
    assert locks.try_lock_batch("G", [Q0, Q1], "c1", 0) == {Q0, Q1}
    assert locks.try_lock_batch("G", [Q0, Q1, Q2], "c2", 30_000) == {Q2}
    assert locks.try_lock_batch("Other", [Q0], "c2", 30_000) == {Q0}, "locks are per group"
    assert locks.lock_owner("G", Q0, 30_000) == "c1"
    assert locks.try_lock_batch("G", [Q0], "c2", 60_000) == set(), "still live at exactly 60 s"
    assert locks.try_lock_batch("G", [Q0], "c2", 60_001) == {Q0}, "expired: taken over"
    assert locks.is_locked("G", Q0, "c2", 60_001)
    assert not locks.is_locked("G", Q0, "c1", 60_001)


def test_renewal_extends_the_lock() -> None:
    locks = RebalanceLockManager(60_000)
    locks.try_lock_batch("G", [Q0], "c1", 0)
    assert locks.try_lock_batch("G", [Q0], "c1", 50_000) == {Q0}
    assert locks.try_lock_batch("G", [Q0], "c2", 100_000) == set()
    assert not locks.is_lock_all_expired("G", 100_000)
    assert locks.is_lock_all_expired("G", 110_001)
    assert locks.is_lock_all_expired("Unknown", 0)


def test_unlock_releases_only_own_queues() -> None:
    locks = RebalanceLockManager()
    locks.try_lock_batch("G", [Q0], "c1", 0)
    locks.try_lock_batch("G", [Q1], "c2", 0)
    assert locks.unlock_batch("G", [Q0, Q1, Q2], "c1") == {Q0}
    assert locks.lock_owner("G", Q0, 0) is None
    assert locks.lock_owner("G", Q1, 0) == "c2"
    assert locks.try_lock_batch("G", [Q0], "c3", 1) == {Q0}


def test_scan_drops_expired_locks() -> None:
    locks = RebalanceLockManager(1000)
    locks.try_lock_batch("G", [Q0, Q1], "c1", 0)
    locks.try_lock_batch("G", [Q2], "c1", 500)
    assert locks.scan_expired(1200) == 2
    assert locks.lock_owner("G", Q2, 1200) == "c1"


def test_message_queue_json() -> None:
    obj = {"brokerName": "broker-a", "queueId": 3, "topic": "T"}
    assert MessageQueue.from_json(obj) == MessageQueue("T", "broker-a", 3)
    assert MessageQueue.from_json(obj).to_json() == obj
    for bad in (
        {"topic": "T", "brokerName": "b", "queueId": "1"},
        {"topic": "T"},
        [],
        {"topic": "T", "brokerName": "b", "queueId": True},
    ):
        with pytest.raises(ProtocolError):
            MessageQueue.from_json(bad)


# -- subscription groups ----------------------------------------------------------------------------------
def groups(**cfg: object) -> SubscriptionGroupManager:
    return SubscriptionGroupManager("/nonexistent", BrokerConfig(**cfg), FakeClock())  # type: ignore[arg-type]


def test_system_groups_exist() -> None:
    m = groups()
    for name in ("TOOLS_CONSUMER", "CID_RMQ_SYS_TRANS", "CID_ONSAPI_OWNER", "SELF_TEST_C_GROUP"):
        assert m.contains(name)
    assert not m.dirty


def test_auto_create_with_defaults() -> None:
    m = groups()
    counter = m.data_version.counter
    cfg = m.find_subscription_group_config("CG")
    assert cfg == SubscriptionGroupConfig("CG")
    assert (cfg.retry_queue_nums, cfg.retry_max_times, cfg.consume_enable) == (1, 16, True)
    assert m.data_version.counter == counter + 1 and m.dirty
    assert m.find_subscription_group_config("CG") is cfg
    assert m.find_subscription_group_config("bad group") is None


def test_no_auto_create_when_disabled_except_system_groups() -> None:
    m = groups(auto_create_subscription_group=False)
    assert m.find_subscription_group_config("CG") is None
    assert m.find_subscription_group_config("CID_RMQ_SYS_REVIVE_GROUP") is not None
    strict = groups(auto_create_subscription_group=False, enable_create_sys_group=False)
    assert strict.find_subscription_group_config("CID_RMQ_SYS_REVIVE_GROUP") is None


def test_update_and_delete() -> None:
    m = groups()
    fifo = m.update_subscription_group_config(
        SubscriptionGroupConfig("F", consume_message_orderly=True, retry_max_times=3)
    )
    assert m.get("F") == fifo
    counter = m.data_version.counter
    m.update_subscription_group_config(
        SubscriptionGroupConfig("F", consume_message_orderly=True, retry_max_times=3)
    )
    assert m.data_version.counter == counter, "an identical update is not a change"
    with pytest.raises(BrokerError) as info:
        m.update_subscription_group_config(SubscriptionGroupConfig("a b"))
    assert info.value.code == ResponseCode.INVALID_PARAMETER
    assert m.delete_subscription_group_config("F") == fifo
    assert m.delete_subscription_group_config("F") is None
    assert m.get("F") is None


def test_forbidden_bits() -> None:
    m = groups()
    m.update_forbidden("G", "T", 2, True)
    assert m.is_forbidden("G", "T", 2) and not m.is_forbidden("G", "T", 1)
    assert m.forbidden("G", "T") == 4
    m.update_forbidden("G", "T", 2, False)
    assert m.forbidden("G", "T") == 0
    assert m.wrapper_json()["forbiddenTable"] == {}


def test_group_config_json() -> None:
    obj = SubscriptionGroupConfig("G").to_json()
    assert obj["groupName"] == "G" and obj["retryMaxTimes"] == 16 and obj["whichBrokerWhenConsumeSlowly"] == 1
    java = {**obj, "groupRetryPolicy": {"type": "CUSTOMIZED"}, "retryQueueNums": 2}
    parsed = SubscriptionGroupConfig.from_json(java)
    assert parsed.retry_queue_nums == 2
    assert parsed.to_json() == java, "unknown upstream fields survive a round trip"
    with pytest.raises(ValueError):
        SubscriptionGroupConfig.from_json({**obj, "retryMaxTimes": "16"})
    with pytest.raises(ValueError):
        SubscriptionGroupConfig.from_json({**obj, "consumeEnable": 1})
