"""The proxy in-process over real sockets: a broker (+ NameServer) on free ports in tmp dirs, a ProxyApp in
front of it (local or cluster backend), and a raw gRPC client made from the official client's own stubs."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from rocketmq.grpc_protocol import definition_pb2 as pb
from rocketmq.grpc_protocol import service_pb2_grpc as sgrpc

from orbitmq.broker.app import BrokerApp
from orbitmq.broker.config import BrokerConfig
from orbitmq.namesrv.app import NamesrvApp
from orbitmq.namesrv.config import NamesrvConfig
from orbitmq.proxy import ClusterBackend, ProxyApp, ProxyConfig
from orbitmq.proxy.backends.local import LocalBackend
from orbitmq.store import StoreConfig

_ids = itertools.count(1)
#: Receives in tests wait seconds, not the default 5 s minimum; invisible times may be short.
FAST_PROXY = ProxyConfig(
    grpc_server_port=0,
    grpc_client_consumer_min_long_polling_timeout_millis=500,
    min_invisible_time_mills_for_recv=1000,
    grpc_shutdown_time_seconds=2,
)


def store_config(root: Path) -> StoreConfig:
    return StoreConfig(
        store_path_root_dir=str(root),
        mapped_file_size_commit_log=4 * 1024 * 1024,
        mapped_file_size_consume_queue=20 * 1024,
    )


class GrpcClient:
    """The official client's stubs with the headers every official client sends."""

    def __init__(self, address: str, client_id: str | None = None) -> None:
        # Its own connection, as the official Python client has (gRPC would share one between channels).
        self.channel = grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        self.stub = sgrpc.MessagingServiceStub(self.channel)
        self.client_id = client_id or f"test@{next(_ids)}"
        host, _, port = address.rpartition(":")
        self.endpoints = pb.Endpoints(
            scheme=pb.AddressScheme.IPv4, addresses=[pb.Address(host=host, port=int(port))]
        )

    @property
    def metadata(self) -> Sequence[tuple[str, str]]:
        return (
            ("x-mq-client-id", self.client_id),
            ("x-mq-client-version", "5.1.2"),
            ("x-mq-language", "PYTHON"),
        )

    async def call(self, name: str, request: Any, timeout: float = 5.0) -> Any:
        return await getattr(self.stub, name)(request, metadata=self.metadata, timeout=timeout)

    async def receive(self, request: Any, timeout: float) -> list[Any]:
        return [r async for r in self.stub.ReceiveMessage(request, metadata=self.metadata, timeout=timeout)]

    async def close(self) -> None:
        await self.channel.close()


@dataclasses.dataclass
class Stack:
    proxy: ProxyApp
    brokers: list[BrokerApp]
    namesrv: NamesrvApp | None
    clients: list[GrpcClient] = dataclasses.field(default_factory=list)

    def client(self, client_id: str | None = None) -> GrpcClient:
        c = GrpcClient(self.proxy.address, client_id)
        self.clients.append(c)
        return c

    async def stop(self) -> None:
        for c in self.clients:
            await c.close()
        await self.proxy.stop()
        for b in self.brokers:
            await b.stop()
        if self.namesrv is not None:
            await self.namesrv.stop()


async def local_stack(root: Path, config: ProxyConfig = FAST_PROXY, **broker: Any) -> Stack:
    b = BrokerApp(BrokerConfig(listen_port=0, **broker), store_config(root / "store"))
    await b.start()
    proxy = ProxyApp(config, LocalBackend(b))
    await proxy.start()
    return Stack(proxy, [b], None)


async def cluster_stack(
    root: Path, config: ProxyConfig = FAST_PROXY, brokers: int = 2, **broker: Any
) -> Stack:
    ns = NamesrvApp(NamesrvConfig(port=0))
    await ns.start()
    apps = []
    for i in range(brokers):
        name = f"broker-{'abcdefgh'[i]}"
        cfg = BrokerConfig(listen_port=0, broker_name=name, namesrv_addr=(ns.addr,), **broker)
        app = BrokerApp(cfg, store_config(root / name))
        await app.start()
        apps.append(app)
    proxy = ProxyApp(config, ClusterBackend([ns.addr], route_refresh_s=1.0))
    await proxy.start()
    return Stack(proxy, apps, ns)


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[Stack]:
    stack = await local_stack(tmp_path)
    try:
        yield stack
    finally:
        await stack.stop()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Stack]:
    stack = await cluster_stack(tmp_path)
    try:
        yield stack
    finally:
        await stack.stop()


async def create_topic(stack: Stack, topic: str, queues: int = 4, **attrs: str) -> None:
    """UPDATE_AND_CREATE_TOPIC on every broker (what ``orbitmq admin topic create`` does); routable at once."""
    from orbitmq.net import RemotingClient
    from orbitmq.protocol.codes import RequestCode, ResponseCode
    from orbitmq.protocol.command import RemotingCommand

    fields = {
        "topic": topic, "defaultTopic": "TBW102", "readQueueNums": str(queues), "writeQueueNums": str(queues),
        "perm": "6", "topicFilterType": "SINGLE_TAG", "order": "false",
    }  # fmt: skip
    if attrs:
        fields["attributes"] = ",".join(f"+{k}={v}" for k, v in attrs.items())
    client = RemotingClient()
    try:
        for b in stack.brokers:
            cmd = RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_TOPIC, fields)
            resp = await client.invoke(b.address, cmd, 5.0)
            assert resp.code == ResponseCode.SUCCESS, resp.remark
    finally:
        await client.close()


async def create_group(stack: Stack, group: str, *, retry_max_times: int = 16, orderly: bool = False) -> None:
    """UPDATE_AND_CREATE_SUBSCRIPTIONGROUP on every broker."""
    import orjson

    from orbitmq.net import RemotingClient
    from orbitmq.protocol.codes import RequestCode, ResponseCode
    from orbitmq.protocol.command import RemotingCommand

    body = orjson.dumps(
        {
            "groupName": group,
            "retryMaxTimes": retry_max_times,
            "consumeMessageOrderly": orderly,
            "consumeEnable": True,
            "retryQueueNums": 1,
        }
    )
    client = RemotingClient()
    try:
        for b in stack.brokers:
            cmd = RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, {}, body)
            resp = await client.invoke(b.address, cmd, 5.0)
            assert resp.code == ResponseCode.SUCCESS, resp.remark
    finally:
        await client.close()
