"""Transactional messages end to end with the SDK's TransactionProducer against a real broker on a FakeClock
(transactionTimeOut 2 s, checks every second): commit, rollback, unknown → back-check commits or rolls back,
the producer gone → moved aside after transactionCheckMax checks, and a broker restart in between."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from orbitmq.broker.app import BrokerApp
from orbitmq.broker.transaction import TransactionalMessageService
from orbitmq.client.model import Message, MessageExt
from orbitmq.client.transaction import LocalTransactionState, TransactionProducer
from orbitmq.core.clock import FakeClock
from orbitmq.protocol.record import MessageRecord, Prop, SysFlag, decode_offset_msg_id, decode_record
from orbitmq.store.api import GetStatus

from .conftest import Cluster, until

MakeCluster = Callable[..., Awaitable[Cluster]]
COMMIT, ROLLBACK, UNKNOW = (LocalTransactionState.COMMIT_MESSAGE, LocalTransactionState.ROLLBACK_MESSAGE,
                            LocalTransactionState.UNKNOW)  # fmt: skip
TX_CONFIG: dict[str, Any] = {
    "transaction_timeout": 2000,
    "transaction_check_interval": 1000,
    "transaction_check_max": 3,
    "transaction_op_batch_interval": 500,
}


class Listener:
    def __init__(self, local: LocalTransactionState, check: LocalTransactionState = UNKNOW) -> None:
        self.local, self.check = local, check
        self.executed: list[tuple[bytes, Any]] = []
        self.checked: list[MessageExt] = []

    async def execute_local_transaction(self, msg: Message, arg: Any) -> LocalTransactionState:
        self.executed.append((msg.body, arg))
        return self.local

    def check_local_transaction(self, msg: MessageExt) -> LocalTransactionState:  # a plain function works too
        self.checked.append(msg)
        return self.check


async def tx_cluster(make_cluster: MakeCluster, **overrides: Any) -> tuple[Cluster, FakeClock]:
    clock = FakeClock(start_ms=int(time.time() * 1000))  # producers stamp born times with the real clock
    return await make_cluster(clock, **{**TX_CONFIG, **overrides}), clock


def records(b: BrokerApp, topic: str, queue_id: int = 0) -> list[MessageRecord]:
    res = b.store.get_messages(topic, queue_id, 0, 64, max_bytes=1 << 24)
    return [decode_record(v) for v in res.buffers] if res.status is GetStatus.FOUND else []


def service(b: BrokerApp) -> TransactionalMessageService:
    assert b.transactions is not None
    return b.transactions


async def checks(clock: FakeClock, rounds: int) -> None:
    for _ in range(rounds):
        await clock.advance(1.0)


async def test_commit_makes_the_message_visible_once(make_cluster: MakeCluster) -> None:
    c, clock = await tx_cluster(make_cluster)
    listener = Listener(COMMIT)
    async with TransactionProducer("TxPG", c.namesrv.addr, listener) as producer:
        result = await producer.send_message_in_transaction(Message("TxTopic", b"order-1"), {"id": 1})
        assert result.local_state is COMMIT and listener.executed == [(b"order-1", {"id": 1})]
        qid = result.send_result.queue.queue_id
        await until(lambda: c.b.store.max_offset_in_queue("TxTopic", qid) == 1)
        [half] = records(c.b, "RMQ_SYS_TRANS_HALF_TOPIC")
        [rec] = records(c.b, "TxTopic", qid)
        assert rec.body == b"order-1" and rec.sys_flag & 0xC == SysFlag.TRANSACTION_COMMIT
        assert rec.uniq_key == result.transaction_id == half.uniq_key
        assert rec.prepared_transaction_offset == half.physical_offset
        assert half.physical_offset == decode_offset_msg_id(result.send_result.offset_msg_id)[2]
        assert Prop.TRAN_MSG not in rec.properties and Prop.REAL_TOPIC not in rec.properties
        assert half.properties[Prop.REAL_TOPIC] == "TxTopic" and half.properties[Prop.PGROUP] == "TxPG"
        await checks(clock, 5)  # long past transactionTimeOut: a settled transaction is never checked
        assert listener.checked == [] and service(c.b).stats.checks_sent == 0
        assert c.b.store.max_offset_in_queue("TxTopic", qid) == 1
        await until(lambda: c.b.store.max_offset_in_queue("RMQ_SYS_TRANS_OP_HALF_TOPIC", 0) == 1)
        [op] = records(c.b, "RMQ_SYS_TRANS_OP_HALF_TOPIC")
        assert op.tags == "d" and op.body == b"0,"


async def test_rollback_drops_the_message(make_cluster: MakeCluster) -> None:
    c, clock = await tx_cluster(make_cluster)
    listener = Listener(ROLLBACK)
    async with TransactionProducer("TxPG", c.namesrv.addr, listener) as producer:
        result = await producer.send_message_in_transaction(Message("TxTopic", b"nope"))
        assert result.local_state is ROLLBACK
        await until(lambda: service(c.b).stats.rolled_back == 1)
        await checks(clock, 5)
        assert (
            listener.checked == [] and sum(c.b.store.max_offset_in_queue("TxTopic", q) for q in range(4)) == 0
        )


async def test_unknown_then_the_back_check_commits(make_cluster: MakeCluster) -> None:
    c, clock = await tx_cluster(make_cluster)
    listener = Listener(UNKNOW, check=COMMIT)
    async with TransactionProducer("TxPG", c.namesrv.addr, listener) as producer:
        result = await producer.send_message_in_transaction(Message("TxTopic", b"later", keys=["k1"]))
        qid = result.send_result.queue.queue_id
        await checks(clock, 1)
        assert listener.checked == []  # transactionTimeOut (2 s) not over yet
        await checks(clock, 2)
        await until(lambda: c.b.store.max_offset_in_queue("TxTopic", qid) == 1)
        [checked] = listener.checked
        assert checked.topic == "TxTopic" and checked.queue_id == qid and checked.body == b"later"
        assert checked.msg_id == result.transaction_id and checked.keys == ["k1"]
        assert checked.properties[Prop.TRANSACTION_CHECK_TIMES] == "1"
        [rec] = records(c.b, "TxTopic", qid)
        assert rec.body == b"later" and rec.uniq_key == result.transaction_id
        await checks(clock, 5)
        assert len(listener.checked) == 1 and c.b.store.max_offset_in_queue("TxTopic", qid) == 1


async def test_unknown_then_the_back_check_rolls_back(make_cluster: MakeCluster) -> None:
    c, clock = await tx_cluster(make_cluster)
    listener = Listener(UNKNOW, check=ROLLBACK)
    async with TransactionProducer("TxPG", c.namesrv.addr, listener) as producer:
        await producer.send_message_in_transaction(Message("TxTopic", b"x"))
        await checks(clock, 3)
        await until(lambda: service(c.b).stats.rolled_back == 1)
        await checks(clock, 5)
        assert (
            len(listener.checked) == 1
            and sum(c.b.store.max_offset_in_queue("TxTopic", q) for q in range(4)) == 0
        )


async def test_a_check_that_stays_unknown_is_asked_again(make_cluster: MakeCluster) -> None:
    c, clock = await tx_cluster(make_cluster, transaction_check_max=5)
    listener = Listener(UNKNOW, check=UNKNOW)
    async with TransactionProducer("TxPG", c.namesrv.addr, listener) as producer:
        await producer.send_message_in_transaction(Message("TxTopic", b"x"))
        await checks(clock, 3)
        await until(lambda: len(listener.checked) == 1)
        listener.check = COMMIT
        await checks(clock, 1)
        await until(lambda: service(c.b).stats.committed == 1)
        assert [m.properties[Prop.TRANSACTION_CHECK_TIMES] for m in listener.checked] == ["1", "2"]


async def test_producer_gone_moves_the_message_aside_after_the_maximum_checks(
    make_cluster: MakeCluster,
) -> None:
    c, clock = await tx_cluster(make_cluster)
    async with TransactionProducer("TxPG", c.namesrv.addr, Listener(UNKNOW)) as producer:
        result = await producer.send_message_in_transaction(Message("TxTopic", b"orphan"))
    svc = service(c.b)
    await checks(clock, 3)  # transactionTimeOut, then check 1
    await until(lambda: svc.stats.checks_without_producer == 1)
    await checks(clock, 2)
    await until(lambda: svc.stats.checks_without_producer == 3)  # transactionCheckMax = 3
    assert svc.stats.discarded == 0
    await checks(clock, 1)
    await until(lambda: svc.stats.discarded == 1)
    [moved] = records(c.b, "TRANS_CHECK_MAX_TIME_TOPIC")
    assert moved.body == b"orphan" and moved.uniq_key == result.transaction_id
    assert (
        moved.properties[Prop.TRANSACTION_CHECK_TIMES] == "3"
        and moved.properties[Prop.REAL_TOPIC] == "TxTopic"
    )
    assert c.b.topics.select_topic_config("TRANS_CHECK_MAX_TIME_TOPIC") is not None
    assert len(svc.table) == 0
    await checks(clock, 5)
    assert svc.stats.checks_without_producer == 3 and svc.stats.discarded == 1


async def test_a_broker_restart_between_prepare_and_check(make_cluster: MakeCluster) -> None:
    c, clock = await tx_cluster(make_cluster)
    async with TransactionProducer("TxPG", c.namesrv.addr, Listener(UNKNOW)) as producer:
        committed = await producer.send_message_in_transaction(Message("TxTopic", b"decided"))
        await producer._end_transaction(committed.send_result, COMMIT)  # decided just before the restart
        await until(lambda: service(c.b).stats.committed == 1)
        pending = await producer.send_message_in_transaction(Message("TxTopic", b"undecided"))

    await c.restart_broker()

    svc = service(c.b)
    assert len(svc.table) == 1 and svc.table.get(pending.transaction_id) is not None
    listener = Listener(UNKNOW, check=COMMIT)
    async with TransactionProducer("TxPG", c.namesrv.addr, listener):  # the application came back too
        await checks(clock, 3)
        await until(lambda: svc.stats.committed == 1)
    bodies = sorted(r.body for q in range(4) for r in records(c.b, "TxTopic", q))
    assert bodies == [b"decided", b"undecided"]  # each exactly once
    assert [m.body for m in listener.checked] == [b"undecided"]
