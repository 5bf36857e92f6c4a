"""ReceiveMessage / Ack / ChangeInvisibleDuration / DLQ through the proxy onto brokers' POP."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from pathlib import Path

import pytest
from rocketmq.grpc_protocol import definition_pb2 as pb
from rocketmq.grpc_protocol import service_pb2 as spb

from orbitmq.proxy.receipt import ReceiptHandle

from .conftest import FAST_PROXY, GrpcClient, Stack, create_group, create_topic, local_stack
from .messages import (
    consumer_settings,
    message,
    receive,
    received_messages,
    received_status,
    seconds,
    send,
)

OK = pb.Code.OK
NOT_FOUND = pb.Code.MESSAGE_NOT_FOUND


async def send_bodies(c: GrpcClient, topic: str, *bodies: str) -> list[str]:
    ids = []
    for body in bodies:
        resp = await c.call("SendMessage", send(message(topic, body.encode(), tag="A")))
        assert resp.status.code == OK, resp.status
        ids.append(resp.entries[0].message_id)
    return ids


async def settle(c: GrpcClient, group: str, topic: str, ctype: int = pb.ClientType.SIMPLE_CONSUMER) -> None:
    """Open Telemetry and send the consumer settings, as every official consumer does first."""
    call = c.stub.Telemetry(metadata=c.metadata)
    await call.write(consumer_settings(group, topic, ctype))
    reply = await call.read()
    assert reply.status.code == OK
    c.telemetry = call  # type: ignore[attr-defined]


def ack_request(group: str, topic: str, msgs: list[pb.Message]) -> spb.AckMessageRequest:
    return spb.AckMessageRequest(
        group=pb.Resource(name=group), topic=pb.Resource(name=topic),
        entries=[spb.AckMessageEntry(message_id=m.system_properties.message_id,
                                     receipt_handle=m.system_properties.receipt_handle) for m in msgs],
    )  # fmt: skip


async def test_receive_ack_and_nothing_left(local: Stack) -> None:
    c = local.client()
    ids = await send_bodies(c, "RecvT", "m0", "m1", "m2")
    await settle(c, "G", "RecvT")
    responses = await c.receive(receive("RecvT", "G", poll_s=1), timeout=5)
    assert (
        responses[0].WhichOneof("content") == "status"
        and responses[-1].WhichOneof("content") == "delivery_timestamp"
    )
    msgs = received_messages(responses)
    assert received_status(responses).code == OK and sorted(
        m.system_properties.message_id for m in msgs
    ) == sorted(ids)
    for m in msgs:
        sp = m.system_properties
        assert (
            m.topic.name == "RecvT" and sp.delivery_attempt == 1 and sp.body_encoding == pb.Encoding.IDENTITY
        )
        assert sp.body_digest.checksum == hashlib.md5(m.body).hexdigest().upper() and sp.tag == "A"
        assert ReceiptHandle.decode(sp.receipt_handle).broker_name == "broker-a"
    acked = await c.call("AckMessage", ack_request("G", "RecvT", msgs))
    assert acked.status.code == OK and [e.status.code for e in acked.entries] == [OK] * 3
    again = await c.receive(receive("RecvT", "G", poll_s=1), timeout=5)
    assert received_status(again).code == NOT_FOUND and not received_messages(again)


async def test_a_message_sent_during_the_poll_ends_it(local: Stack) -> None:
    c = local.client()
    await send_bodies(c, "PollT", "warm-up")
    await settle(c, "G", "PollT")
    first = received_messages(await c.receive(receive("PollT", "G", poll_s=1), timeout=5))
    await c.call("AckMessage", ack_request("G", "PollT", first))
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.create_task(c.receive(receive("PollT", "G", poll_s=8), timeout=12))
    await asyncio.sleep(0.3)
    await send_bodies(c, "PollT", "late")
    msgs = received_messages(await task)
    assert [m.body for m in msgs] == [b"late"] and loop.time() - started < 4


async def test_change_invisible_duration_returns_the_handle_for_the_next_ack(local: Stack) -> None:
    c = local.client()
    await send_bodies(c, "ChangeT", "m")
    await settle(c, "G", "ChangeT")
    [m] = received_messages(await c.receive(receive("ChangeT", "G", poll_s=1), timeout=5))
    req = spb.ChangeInvisibleDurationRequest(
        group=pb.Resource(name="G"), topic=pb.Resource(name="ChangeT"), receipt_handle=m.system_properties.receipt_handle,
        invisible_duration=seconds(30), message_id=m.system_properties.message_id,
    )  # fmt: skip
    changed = await c.call("ChangeInvisibleDuration", req)
    assert changed.status.code == OK and changed.receipt_handle != m.system_properties.receipt_handle
    m.system_properties.receipt_handle = changed.receipt_handle
    assert (await c.call("AckMessage", ack_request("G", "ChangeT", [m]))).status.code == OK


async def test_bad_handles_and_bad_invisible_times_are_refused(local: Stack) -> None:
    c = local.client()
    bad = spb.AckMessageRequest(
        group=pb.Resource(name="G"), topic=pb.Resource(name="T"),
        entries=[spb.AckMessageEntry(message_id="1", receipt_handle="not a handle")],
    )  # fmt: skip
    resp = await c.call("AckMessage", bad)
    assert resp.entries[0].status.code == pb.Code.INVALID_RECEIPT_HANDLE
    short = receive("T", "G", invisible_s=0.5)
    assert received_status(await c.receive(short, timeout=5)).code == pb.Code.ILLEGAL_INVISIBLE_TIME


@pytest.mark.slow
async def test_unacked_message_comes_back_with_attempt_2_then_goes_to_the_dlq(tmp_path: Path) -> None:
    stack = await local_stack(tmp_path)
    try:
        c = stack.client()
        await create_group(stack, "GD", retry_max_times=1)  # max attempts 2
        [mid] = await send_bodies(c, "DlqT", "doomed")
        await settle(c, "GD", "DlqT")
        attempts = []
        for _ in range(2):
            msgs: list[pb.Message] = []
            for _ in range(30):
                msgs = received_messages(
                    await c.receive(receive("DlqT", "GD", invisible_s=1, poll_s=1), timeout=5)
                )
                if msgs:
                    break
            assert [m.system_properties.message_id for m in msgs] == [mid]
            attempts.append(msgs[0].system_properties.delivery_attempt)
        assert attempts == [1, 2]
        # A third delivery would exceed the attempts: the message goes to %DLQ%GD instead (the broker's revive
        # or the proxy's post-filter, whichever sees it first) and is never delivered here again.
        dead: list[pb.Message] = []
        for _ in range(30):
            assert not received_messages(
                await c.receive(receive("DlqT", "GD", invisible_s=1, poll_s=1), timeout=5)
            )
            dead = received_messages(await c.receive(receive("%DLQ%GD", "DLQ_READER", poll_s=1), timeout=5))
            if dead:
                break
        assert [m.system_properties.message_id for m in dead] == [mid]
    finally:
        await stack.stop()


@pytest.mark.slow
async def test_auto_renew_keeps_a_slow_push_consumers_message_invisible(tmp_path: Path) -> None:
    cfg = dataclasses.replace(
        FAST_PROXY,
        renew_slice_time_millis=2000,
        renew_ahead_time_millis=1500,
        renew_schedule_period_millis=200,
    )
    stack = await local_stack(tmp_path, cfg)
    try:
        c, other = stack.client(), stack.client()
        await send_bodies(c, "RenewT", "slow")
        await settle(c, "GR", "RenewT", pb.ClientType.PUSH_CONSUMER)
        [m] = received_messages(
            await c.receive(receive("RenewT", "GR", auto_renew=True, poll_s=1), timeout=5)
        )
        await settle(other, "GR", "RenewT")
        # Longer than two slices: without renewal the other consumer would get it.
        got = received_messages(await other.receive(receive("RenewT", "GR", poll_s=5), timeout=9))
        assert not got and stack.proxy.counters.renewals >= 2
        acked = await c.call("AckMessage", ack_request("GR", "RenewT", [m]))  # the first handle still works
        assert acked.status.code == OK
        assert not received_messages(await other.receive(receive("RenewT", "GR", poll_s=3), timeout=7))
    finally:
        await stack.stop()


async def test_two_brokers_a_message_on_either_ends_the_long_poll(cluster: Stack) -> None:
    from orbitmq.client import Message, MessageQueue, Producer

    await create_topic(cluster, "TwoT", queues=2)
    c = cluster.client()
    await settle(c, "G2", "TwoT")
    loop = asyncio.get_running_loop()
    assert cluster.namesrv is not None
    async with Producer("PG", [cluster.namesrv.addr]) as producer:
        for broker in ("broker-b", "broker-a", "broker-b"):
            started = loop.time()
            task = asyncio.create_task(
                c.receive(receive("TwoT", "G2", poll_s=10, broker="broker-a"), timeout=15)
            )
            await asyncio.sleep(0.3)  # the receive is parked now
            await producer.send(Message("TwoT", broker.encode()), queue=MessageQueue("TwoT", broker, 1))
            msgs = received_messages(await task)
            assert [m.body for m in msgs] == [broker.encode()]
            assert loop.time() - started < 5, "the message waited for the poll to run out"
            await c.call("AckMessage", ack_request("G2", "TwoT", msgs))
    counters = cluster.proxy.counters
    assert counters.pop_with_notify >= 3 and counters.false_empties == 0
