"""gRPC consumers are members of their groups on the brokers: the proxy heart-beats each one under its own
client id and address, so GET_CONSUMER_CONNECTION_LIST (``orbitmq admin group describe``) lists them; a
client that terminates, or the proxy stopping, takes them out again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from rocketmq.grpc_protocol import definition_pb2 as pb
from rocketmq.grpc_protocol import service_pb2 as spb

from orbitmq.admin import AdminClient
from orbitmq.broker.groups import ConsumerGroupSnapshot
from orbitmq.broker.heartbeat import ConsumeType

from .conftest import GrpcClient, Stack, cluster_stack, create_topic, local_stack
from .messages import consumer_settings, receive

OK = pb.Code.OK
TOPIC, GROUP = "MembersT", "MembersG"


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Registration is asynchronous (a background heartbeat): wait for its effect on the broker."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {timeout}s: {what}") from None


def snapshot(stack: Stack, group: str = GROUP) -> ConsumerGroupSnapshot | None:
    return stack.brokers[0].consumers.group_info(group)


def member_ids(stack: Stack, group: str = GROUP) -> list[str]:
    snap = snapshot(stack, group)
    return [m.client_id for m in snap.members] if snap else []


async def open_settings(stack: Stack, client_id: str, expression: str = "*") -> GrpcClient:
    c = stack.client(client_id)
    call = c.stub.Telemetry(metadata=c.metadata)
    command = consumer_settings(GROUP, TOPIC)
    command.settings.subscription.subscriptions[0].expression.expression = expression
    command.settings.user_agent.language = pb.Language.NODE_JS
    await call.write(command)
    assert (await call.read()).status.code == OK
    return c


async def test_local_members_carry_their_own_ids_addresses_and_subscriptions(tmp_path: Path) -> None:
    stack = await local_stack(tmp_path)
    try:
        await create_topic(stack, TOPIC)
        a = await open_settings(stack, "grpc-a", "TagA || TagB")
        await open_settings(stack, "grpc-b", "TagA || TagB")
        await eventually(lambda: member_ids(stack) == ["grpc-a", "grpc-b"], "both gRPC consumers are members")
        snap = snapshot(stack)
        assert snap is not None and snap.consume_type is ConsumeType.CONSUME_POP
        assert snap.subscriptions[TOPIC].tags_set == ("TagA", "TagB")
        addrs = {m.client_addr for m in snap.members}
        assert len(addrs) == 2 and stack.proxy.address not in addrs, (
            "each client's own address, not the proxy's"
        )
        assert {m.language for m in snap.members} == {"NODE_JS"}

        bye = await a.call(
            "NotifyClientTermination", spb.NotifyClientTerminationRequest(group=pb.Resource(name=GROUP))
        )
        assert bye.status.code == OK
        await eventually(lambda: member_ids(stack) == ["grpc-b"], "a terminated client leaves its group")

        # A client that never sent settings becomes a member by receiving.
        c = stack.client("grpc-c")
        answers = await c.receive(receive(TOPIC, GROUP, poll_s=0.5), timeout=5)
        assert answers[0].status.code == pb.Code.MESSAGE_NOT_FOUND
        await eventually(lambda: member_ids(stack) == ["grpc-b", "grpc-c"], "a receiving client is a member")
    finally:
        await stack.proxy.stop()
        assert member_ids(stack) == [], "a stopping proxy unregisters its consumers"
        await stack.stop()


async def test_cluster_members_show_in_admin_describe_on_every_broker(tmp_path: Path) -> None:
    stack = await cluster_stack(tmp_path)
    try:
        await create_topic(stack, TOPIC)
        await open_settings(stack, "grpc-a")
        assert stack.namesrv is not None
        async with AdminClient(stack.namesrv.addr) as admin:

            async def described() -> list[tuple[str, int]]:
                d = await admin.describe_group(GROUP)
                return [(m.client_id, len(m.brokers)) for m in d.members]

            try:
                async with asyncio.timeout(10):
                    while await described() != [("grpc-a", 2)]:
                        await asyncio.sleep(0.05)
            except TimeoutError:
                raise AssertionError(f"describe shows {await described()}") from None
            d = await admin.describe_group(GROUP)
            assert d.mode == "CLUSTERING POP" and d.subscriptions == {TOPIC: "*"}
            # Both brokers show the client's own address (the proxy's two connections have two ports).
            first, second = d.members[0].addresses
            assert first == second and first != stack.proxy.address
    finally:
        await stack.stop()
