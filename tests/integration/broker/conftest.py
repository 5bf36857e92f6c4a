"""A real NamesrvApp and BrokerApp on port 0 with a tmp store, driven over TCP by RemotingClient.

``cluster`` is a started :class:`Cluster`; ``make_cluster(**broker_config_overrides)`` builds others (another
config, a FakeClock, a restart on the same directory). Helpers speak the wire protocol the way the real
clients do (remoting-protocol §2.4-§2.7, §6), so every test exercises the handlers end to end.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from orbitmq.broker import BrokerApp, BrokerConfig
from orbitmq.core.clock import Clock
from orbitmq.namesrv import NamesrvApp, NamesrvConfig
from orbitmq.net import RemotingClient
from orbitmq.protocol.codes import RequestCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import MessageRecord, decode_records, encode_properties
from orbitmq.store import StoreConfig

T = 5.0  # request timeout (s): far above any answer time, so a hang fails instead of passing slowly
#: 18 one-second levels: retries and DELAY messages become due after 1 s.
SHORT_DELAY_LEVELS = " ".join(["1s"] * 18)

SYS_COMMIT, SYS_SUSPEND, SYS_SUBSCRIPTION = 0x1, 0x2, 0x4


def java(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


async def until(predicate: Callable[[], bool], timeout: float = T) -> None:
    """Let the loop run until ``predicate`` holds (state with no event to await, e.g. a held pull)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


class Cluster:
    def __init__(self, root: Path, clock: Clock | None = None, store_overrides: Mapping[str, Any] | None = None,
                 **broker_overrides: Any) -> None:  # fmt: skip
        self.root = root
        self.clock = clock
        self.store_config = StoreConfig(
            store_path_root_dir=str(root / "store"),
            mapped_file_size_commit_log=4 * 1024 * 1024,
            mapped_file_size_consume_queue=20 * 1024,
            **(store_overrides or {}),
        )
        self.broker_overrides = broker_overrides
        self.namesrv = NamesrvApp(NamesrvConfig(port=0))
        self.broker: BrokerApp | None = None
        self.client = RemotingClient()

    @property
    def b(self) -> BrokerApp:
        assert self.broker is not None
        return self.broker

    def broker_config(self, port: int = 0) -> BrokerConfig:
        base = BrokerConfig(
            listen_port=port, namesrv_addr=(self.namesrv.addr,), message_delay_level=SHORT_DELAY_LEVELS
        )
        return dataclasses.replace(base, **self.broker_overrides)

    async def start(self) -> Cluster:
        await self.namesrv.start()
        await self.start_broker()
        return self

    async def start_broker(self, port: int = 0) -> BrokerApp:
        self.broker = BrokerApp(self.broker_config(port), self.store_config, clock=self.clock)
        await self.broker.start()
        return self.broker

    async def restart_broker(self) -> BrokerApp:
        """Stop the broker cleanly and start a new one on the same directory and port."""
        port = self.b.port
        await self.b.stop()
        return await self.start_broker(port)

    async def stop(self) -> None:
        await self.client.close()
        if self.broker is not None:
            await self.broker.stop()
        await self.namesrv.stop()

    # -- requests -------------------------------------------------------------------------------------
    async def call(self, code: int, body: bytes = b"", *, to: str = "broker", client: RemotingClient | None = None,
                   timeout: float = T, **fields: object) -> RemotingCommand:  # fmt: skip
        addr = self.b.address if to == "broker" else self.namesrv.addr
        ext = {k: java(v) for k, v in fields.items() if v is not None}
        return await (client or self.client).invoke(addr, RemotingCommand.request(code, ext, body), timeout)

    async def send(self, topic: str, body: bytes = b"hello", *, tags: str | None = None, keys: str | None = None,
                   queue_id: int = 0, props: Mapping[str, str] | None = None, code: int = RequestCode.SEND_MESSAGE_V2,
                   **header: object) -> RemotingCommand:  # fmt: skip
        p = dict(props or {})
        if tags is not None:
            p["TAGS"] = tags
        if keys is not None:
            p["KEYS"] = keys
        fields: dict[str, object] = {
            "producerGroup": "PG", "topic": topic, "defaultTopic": "TBW102", "defaultTopicQueueNums": 4,
            "queueId": queue_id, "sysFlag": 0, "bornTimestamp": 1_700_000_000_000, "flag": 0,
            "properties": encode_properties(p), "reconsumeTimes": 0, "unitMode": False,
        }  # fmt: skip
        fields.update(header)
        if code != RequestCode.SEND_MESSAGE:
            short = dict(zip(["producerGroup", "topic", "defaultTopic", "defaultTopicQueueNums", "queueId", "sysFlag",
                              "bornTimestamp", "flag", "properties", "reconsumeTimes", "unitMode",
                              "maxReconsumeTimes", "batch"], "abcdefghijklm", strict=True))  # fmt: skip
            fields = {short.get(k, k): v for k, v in fields.items()}
        return await self.call(code, body, **fields)

    async def pull(self, topic: str, queue_id: int = 0, offset: int = 0, *, group: str = "G",
                   sys_flag: int = SYS_SUBSCRIPTION, subscription: str | None = "*", suspend_ms: int = 15000,
                   commit_offset: int = 0, max_nums: int = 32, client: RemotingClient | None = None,
                   timeout: float = T, code: int = RequestCode.PULL_MESSAGE,
                   **extra: object) -> tuple[RemotingCommand, list[MessageRecord]]:  # fmt: skip
        response = await self.call(
            code, consumerGroup=group, topic=topic, queueId=queue_id, queueOffset=offset, maxMsgNums=max_nums,
            sysFlag=sys_flag, commitOffset=commit_offset, suspendTimeoutMillis=suspend_ms,
            subscription=subscription, subVersion=extra.pop("subVersion", 0), client=client, timeout=timeout, **extra,
        )  # fmt: skip
        return response, decode_records(response.body_bytes()) if response.code == 0 else []

    async def heartbeat(self, client_id: str, group: str, subscriptions: Mapping[str, str] | None = None, *,
                        client: RemotingClient | None = None, model: str = "CLUSTERING", sub_version: int = 1,
                        producer_group: str | None = None) -> RemotingCommand:  # fmt: skip
        subs = [{"topic": t, "subString": e, "classFilterMode": False, "tagsSet": [], "codeSet": [],
                 "subVersion": sub_version} for t, e in (subscriptions or {}).items()]  # fmt: skip
        for s, expr in zip(subs, (subscriptions or {}).values(), strict=True):
            if expr != "*":
                from orbitmq.broker.filters import build_subscription

                built = build_subscription(s["topic"], expr)
                s["tagsSet"], s["codeSet"] = list(built.tags_set), list(built.code_set)
        body = {
            "clientID": client_id,
            "consumerDataSet": [{"groupName": group, "consumeType": "CONSUME_PASSIVELY", "messageModel": model,
                                 "consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET", "subscriptionDataSet": subs,
                                 "unitMode": False}] if group else [],
            "producerDataSet": [{"groupName": producer_group}] if producer_group else [],
        }  # fmt: skip
        return await self.call(RequestCode.HEART_BEAT, orjson.dumps(body), client=client)


@pytest.fixture
async def make_cluster(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Cluster]]]:
    made: list[Cluster] = []

    async def make(clock: Clock | None = None, store_overrides: Mapping[str, Any] | None = None,
                   **broker_overrides: Any) -> Cluster:  # fmt: skip
        c = Cluster(tmp_path / f"c{len(made)}", clock, store_overrides, **broker_overrides)
        made.append(c)
        return await c.start()

    yield make
    for c in made:
        await c.stop()


@pytest.fixture
async def cluster(make_cluster: Callable[..., Awaitable[Cluster]]) -> Cluster:
    return await make_cluster()
