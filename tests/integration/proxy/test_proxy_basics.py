"""Routes, settings, sends and client bookkeeping through a real gRPC socket, in local and cluster mode."""

from __future__ import annotations

import asyncio

from rocketmq.grpc_protocol import definition_pb2 as pb
from rocketmq.grpc_protocol import service_pb2 as spb

from orbitmq.protocol.record import Prop

from .conftest import Stack, create_topic
from .messages import consumer_settings, message, producer_settings, send

OK = pb.Code.OK


def route_request(topic: str, client) -> spb.QueryRouteRequest:  # type: ignore[no-untyped-def]
    return spb.QueryRouteRequest(topic=pb.Resource(name=topic), endpoints=client.endpoints)


async def test_route_points_back_at_the_proxy_with_queue_zero_and_every_type(local: Stack) -> None:
    c = local.client()
    resp = await c.call("QueryRoute", route_request("RouteT", c))
    assert resp.status.code == OK
    queues = resp.message_queues
    assert {q.id for q in queues} >= {0}  # Node 1.0.8 only uses queue 0
    for q in queues:
        assert q.broker.id == 0 and q.broker.name == "broker-a"
        assert q.permission == pb.Permission.READ_WRITE
        assert q.broker.endpoints.scheme == pb.AddressScheme.IPv4
        assert [(a.host, a.port) for a in q.broker.endpoints.addresses] == [("127.0.0.1", local.proxy.port)]
        assert set(q.accept_message_types) == {1, 2, 3, 4}


async def test_missing_client_id_is_refused_in_band(local: Stack) -> None:
    c = local.client()
    resp = await c.stub.QueryRoute(route_request("RouteT", c), timeout=5)
    assert resp.status.code == pb.Code.CLIENT_ID_REQUIRED


async def test_settings_replies_keep_the_stream_open(local: Stack) -> None:
    c = local.client()
    call = c.stub.Telemetry(metadata=c.metadata, timeout=10)
    await call.write(producer_settings("T1"))
    first = await call.read()
    assert first.status.code == OK
    pub = first.settings.publishing
    assert pub.max_body_size == 4 * 1024 * 1024 and pub.validate_message_type
    assert first.settings.backoff_policy.HasField("exponential_backoff")  # Node crashes without one
    assert first.settings.backoff_policy.max_attempts == 3
    await call.write(consumer_settings("G1", "T1"))  # a second command on the same stream is answered too
    second = await call.read()
    sub = second.settings.subscription
    assert (
        second.status.code == OK and sub.long_polling_timeout.seconds == 20 and sub.receive_batch_size == 32
    )
    assert not sub.fifo and second.settings.backoff_policy.max_attempts == 17
    assert len(second.settings.backoff_policy.customized_backoff.next) == 18
    await call.done_writing()
    assert await call.read() == grpc_eof()


def grpc_eof():  # type: ignore[no-untyped-def]
    import grpc

    return grpc.aio.EOF


async def test_send_stores_properties_the_remoting_way(local: Stack) -> None:
    c = local.client()
    msg = message("SendT", b"payload", tag="TagA", keys=("k1", "k2"), props={"color": "red"})
    resp = await c.call("SendMessage", send(msg))
    assert resp.status.code == OK and len(resp.entries) == 1
    entry = resp.entries[0]
    assert (
        entry.status.code == OK and entry.message_id == msg.system_properties.message_id and entry.offset == 0
    )
    [rec] = local.brokers[0].store.query_message("SendT", entry.message_id, 10)
    assert (
        rec.body == b"payload"
        and rec.properties[Prop.TAGS] == "TagA"
        and rec.properties[Prop.KEYS] == "k1 k2"
    )
    assert rec.properties["color"] == "red" and rec.properties[Prop.BORN_HOST] == "10.0.0.1"


async def test_send_refuses_what_the_java_proxy_refuses(local: Stack) -> None:
    c = local.client()
    reserved = await c.call("SendMessage", send(message("SendT", props={"UNIQ_KEY": "x"})))
    assert reserved.status.code == pb.Code.ILLEGAL_MESSAGE_PROPERTY_KEY and not reserved.entries
    empty = await c.call("SendMessage", send(message("SendT", b"")))
    assert empty.status.code == pb.Code.MESSAGE_BODY_EMPTY
    no_id = message("SendT")
    no_id.system_properties.message_id = ""
    assert (await c.call("SendMessage", send(no_id))).status.code == pb.Code.ILLEGAL_MESSAGE_ID
    big = await c.call("SendMessage", send(message("SendT", b"x" * (4 * 1024 * 1024 + 1))))
    assert big.status.code == pb.Code.MESSAGE_BODY_TOO_LARGE


async def test_assignment_is_one_whole_broker_queue(cluster: Stack) -> None:
    c = cluster.client()
    await c.call("SendMessage", send(message("AssignT")))  # creates the topic on a broker
    for _ in range(50):
        resp = await c.call(
            "QueryAssignment",
            spb.QueryAssignmentRequest(
                topic=pb.Resource(name="AssignT"), group=pb.Resource(name="G"), endpoints=c.endpoints
            ),
        )
        if resp.status.code == OK:
            break
        await asyncio.sleep(0.1)
    assert resp.status.code == OK
    assert [a.message_queue.id for a in resp.assignments] == [-1] * len(resp.assignments)
    assert all(
        a.message_queue.broker.endpoints.addresses[0].port == cluster.proxy.port for a in resp.assignments
    )


async def test_unknown_topic_routes_to_every_auto_creating_broker(cluster: Stack) -> None:
    c = cluster.client()
    route = await c.call("QueryRoute", route_request("NewT", c))
    assert route.status.code == OK
    assert {q.broker.name for q in route.message_queues} == {"broker-a", "broker-b"}  # TBW102's brokers
    resp = await c.call("SendMessage", send(message("NewT")))
    assert resp.status.code == OK  # the first send creates it


async def test_cluster_sends_spread_over_both_brokers(cluster: Stack) -> None:
    await create_topic(cluster, "SpreadT")
    c = cluster.client()
    route = await c.call("QueryRoute", route_request("SpreadT", c))
    assert {q.broker.name for q in route.message_queues} == {"broker-a", "broker-b"}
    for i in range(8):
        resp = await c.call("SendMessage", send(message("SpreadT", f"m{i}".encode())))
        assert resp.status.code == OK, resp.status
    per_broker = [sum(b.store.max_offset_in_queue("SpreadT", q) for q in range(4)) for b in cluster.brokers]
    assert sum(per_broker) == 8 and all(n > 0 for n in per_broker), per_broker


async def test_heartbeat_and_termination(local: Stack) -> None:
    c = local.client()
    hb = await c.call(
        "Heartbeat",
        spb.HeartbeatRequest(group=pb.Resource(name="G"), client_type=pb.ClientType.SIMPLE_CONSUMER),
    )
    assert hb.status.code == OK
    assert local.proxy.processor is not None and local.proxy.processor.clients.get(c.client_id) is not None
    bye = await c.call(
        "NotifyClientTermination", spb.NotifyClientTerminationRequest(group=pb.Resource(name="G"))
    )
    assert bye.status.code == OK
    assert local.proxy.processor.clients.get(c.client_id) is None
