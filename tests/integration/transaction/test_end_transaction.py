"""END_TRANSACTION and CHECK_TRANSACTION_STATE on the wire, the way a Java producer speaks them: the send answer
names the half message, the header checks and remarks are upstream's, a decision is applied once, the check
carries upstream's header fields, and rejectTransactionMessage refuses half messages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from orbitmq.core.clock import FakeClock
from orbitmq.core.errors import ClientError
from orbitmq.net import Connection, DispatchTable, RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import Prop, decode_offset_msg_id, decode_records

from .conftest import Cluster, until

MakeCluster = Callable[..., Awaitable[Cluster]]
HALF_PROPS = {Prop.TRAN_MSG: "true", Prop.PGROUP: "PG", Prop.UNIQ_KEY: "UNIQ1"}


async def send_half(c: Cluster, body: bytes = b"h", **props: str) -> tuple[int, int]:
    """(tranStateTableOffset, commitLogOffset) of a stored half message, from the send answer."""
    r = await c.send(
        "TxWire", body, props={**HALF_PROPS, **props}, sysFlag=4, bornTimestamp=int(time.time() * 1000)
    )
    assert r.code == ResponseCode.SUCCESS, r.remark
    assert r.ext_fields["queueId"] == "0" and r.ext_fields["transactionId"] == props.get(
        Prop.UNIQ_KEY, "UNIQ1"
    )
    return int(r.ext_fields["queueOffset"]), decode_offset_msg_id(r.ext_fields["msgId"])[2]


async def end(c: Cluster, offsets: tuple[int, int], state: int, *, group: str = "PG", timeout: float = 5.0,
              from_check: bool = False) -> RemotingCommand:  # fmt: skip
    return await c.call(RequestCode.END_TRANSACTION, producerGroup=group, tranStateTableOffset=offsets[0],
                        commitLogOffset=offsets[1], commitOrRollback=state, fromTransactionCheck=from_check,
                        msgId="UNIQ1", timeout=timeout)  # fmt: skip


async def test_half_message_is_invisible_until_commit_and_committed_once(cluster: Cluster) -> None:
    offsets = await send_half(cluster)
    assert offsets[0] == 0
    assert cluster.b.store.max_offset_in_queue("TxWire", 0) == 0
    assert cluster.b.store.max_offset_in_queue("RMQ_SYS_TRANS_HALF_TOPIC", 0) == 1
    r = await end(cluster, offsets, 8)
    assert r.code == ResponseCode.SUCCESS
    r = await end(cluster, offsets, 8)  # the same decision again (e.g. a check answered late): no second copy
    assert r.code == ResponseCode.SUCCESS
    r = await end(cluster, offsets, 12)  # a contradicting one after the fact changes nothing
    assert r.code == ResponseCode.SUCCESS
    _, records = await cluster.pull("TxWire", 0, 0, suspend_ms=0)
    assert [m.body for m in records] == [b"h"] and records[0].sys_flag & 0xC == 8


async def test_header_checks_answer_upstreams_remarks(cluster: Cluster) -> None:
    offsets = await send_half(cluster)
    r = await end(cluster, offsets, 8, group="OtherPG")
    assert (r.code, r.remark) == (ResponseCode.SYSTEM_ERROR, "The producer group wrong")
    r = await end(cluster, (offsets[0] + 1, offsets[1]), 8)
    assert (r.code, r.remark) == (ResponseCode.SYSTEM_ERROR, "The transaction state table offset wrong")
    r = await end(cluster, (offsets[0], offsets[1] + 1), 8)
    assert (r.code, r.remark) == (ResponseCode.SYSTEM_ERROR, "Find prepared transaction message failed")
    r = await cluster.call(RequestCode.END_TRANSACTION, producerGroup="PG", commitOrRollback=8)
    assert r.code == ResponseCode.SYSTEM_ERROR and "tranStateTableOffset" in (r.remark or "")
    # state 0 (UNKNOW) is not answered at all, as upstream
    with pytest.raises(ClientError):
        await end(cluster, offsets, 0, timeout=0.5)
    assert cluster.b.store.max_offset_in_queue("TxWire", 0) == 0
    assert (await end(cluster, offsets, 12)).code == ResponseCode.SUCCESS  # still decidable


async def test_custom_immunity_refuses_a_late_producer_decision(make_cluster: MakeCluster) -> None:
    clock = FakeClock(start_ms=int(time.time() * 1000))
    c = await make_cluster(clock, transaction_check_interval=3_600_000)
    offsets = await send_half(c, **{Prop.CHECK_IMMUNITY_TIME_IN_SECONDS: "10"})
    await clock.advance(11)
    r = await end(c, offsets, 8)
    assert r.code == ResponseCode.ILLEGAL_OPERATION
    r = await end(c, offsets, 8, from_check=True)  # the check's answer is taken
    assert r.code == ResponseCode.SUCCESS
    assert c.b.store.max_offset_in_queue("TxWire", 0) == 1


async def test_reject_transaction_message(make_cluster: MakeCluster) -> None:
    c = await make_cluster(reject_transaction_message=True)
    r = await c.send("TxWire", props=HALF_PROPS, sysFlag=4)
    assert r.code == ResponseCode.NO_PERMISSION and "sending transaction message is forbidden" in (
        r.remark or ""
    )


async def test_check_transaction_state_carries_upstreams_header(make_cluster: MakeCluster) -> None:
    clock = FakeClock(start_ms=int(time.time() * 1000))
    c = await make_cluster(clock, transaction_timeout=1000, transaction_check_interval=1000)
    checks: asyncio.Queue[RemotingCommand] = asyncio.Queue()

    async def on_check(cmd: RemotingCommand, conn: Connection) -> None:
        await checks.put(cmd)

    producer = RemotingClient(dispatch=DispatchTable({RequestCode.CHECK_TRANSACTION_STATE: on_check}))
    try:
        r = await c.heartbeat("producer-1", "", producer_group="PG", client=producer)
        assert r.code == ResponseCode.SUCCESS
        first = await send_half(c, b"ask me")
        await clock.advance(2)
        cmd = await asyncio.wait_for(checks.get(), 5)
        assert cmd.is_oneway
        fields = cmd.ext_fields
        assert (
            fields["topic"] == "RMQ_SYS_TRANS_HALF_TOPIC" and fields["brokerName"] == c.b.config.broker_name
        )
        assert fields["msgId"] == fields["transactionId"] == "UNIQ1"
        renewed = (int(fields["tranStateTableOffset"]), int(fields["commitLogOffset"]))
        assert renewed[0] == first[0] + 1 and renewed[1] > first[1]  # the copy put back at the end
        assert decode_offset_msg_id(fields["offsetMsgId"])[2] == renewed[1]
        [rec] = decode_records(cmd.body_bytes())
        assert (rec.topic, rec.queue_id, rec.body) == ("TxWire", 0, b"ask me")
        assert (rec.queue_offset, rec.physical_offset) == renewed
        assert rec.properties[Prop.TRANSACTION_CHECK_TIMES] == "1" and rec.properties[Prop.PGROUP] == "PG"
        # The Java producer answers with END_TRANSACTION fromTransactionCheck=true, oneway, on this connection.
        answer = {"producerGroup": "PG", "tranStateTableOffset": str(renewed[0]), "commitLogOffset": str(renewed[1]),
                  "commitOrRollback": "8", "fromTransactionCheck": "true", "msgId": "UNIQ1", "transactionId": "UNIQ1",
                  "topic": fields["topic"]}  # fmt: skip
        await producer.invoke_oneway(
            c.b.address, RemotingCommand.request(RequestCode.END_TRANSACTION, answer, oneway=True)
        )
        await until(lambda: c.b.store.max_offset_in_queue("TxWire", 0) == 1)
        # The original half record (superseded by the copy) names the same transaction: already settled.
        assert (await end(c, first, 8)).code == ResponseCode.SUCCESS
        assert c.b.store.max_offset_in_queue("TxWire", 0) == 1
    finally:
        await producer.close()
