"""Capture a whole ali-ons session against the real OrbitMQ NameServer and Broker, for the golden vectors here.

    python -m tests.compat.vectors.alions.capture_session tests/compat/vectors/alions

One relay sits in front of the NameServer, another owns the broker's advertised address: the broker listens
on 127.0.0.2:P and registers 127.0.0.1:P, where the relay listens (every 127.x address is loopback on
Linux), so the route ali-ons receives leads it through the relay. The session:

1. producer.js sends 3 messages (tags ``TagA``, keys ``k{i}``) and closes;
2. consumer.js (group ``CG_VECTOR``) consumes them, fails ``msg-1`` once (CONSUMER_SEND_MSG_BACK, then the
   retry arrives through ``%RETRY%CG_VECTOR`` after 1 s), commits, and is stopped with SIGTERM;
3. consumer.js (group ``CG_VECTOR_TS``, CONSUME_FROM_TIMESTAMP): for this group only the capture script
   answers QUERY_CONSUMER_OFFSET with QUERY_NOT_FOUND (22), so ali-ons falls back to
   SEARCH_OFFSET_BY_TIMESTAMP (29) for the topic and GET_MAX_OFFSET (30) for the retry topic.

Together that is every request ali-ons ever sends (105, 34, 35, 310, 11, 14, 15, 30, 29, 38, 36) and every
body it parses (route, consumer list, pull records). Writes ``<name>.ns.json`` and ``<name>.broker.json``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from orbitmq.broker import BrokerApp, BrokerConfig
from orbitmq.namesrv import NamesrvApp, NamesrvConfig
from orbitmq.net import Connection, RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.store import StoreConfig
from tests.compat.alions import NodeProcess, start_consumer, start_producer
from tests.compat.vectors.capture import CaptureRelay

NAME = "alions-3.12.0-session"
TOPIC = "VectorTopic"
FORCED_NOT_FOUND_GROUP = "CG_VECTOR_TS"
OPTIONS = {"rebalanceInterval": 1000, "persistConsumerOffsetInterval": 1000}


def force_offset_not_found(broker: BrokerApp) -> None:
    """QUERY_CONSUMER_OFFSET answers 22 for one group, so ali-ons shows its fallbacks (29 and 30)."""
    real = broker.dispatch.get(RequestCode.QUERY_CONSUMER_OFFSET)
    assert real is not None

    async def handler(cmd: RemotingCommand, conn: Connection) -> RemotingCommand | None:
        if cmd.ext_fields.get("consumerGroup") == FORCED_NOT_FOUND_GROUP:
            return cmd.response(ResponseCode.QUERY_NOT_FOUND, "Not found (forced by capture_session.py)")
        return await real(cmd, conn)

    broker.dispatch.register(RequestCode.QUERY_CONSUMER_OFFSET, handler, replace=True)


async def check(proc: NodeProcess, ok: bool) -> None:
    if not ok:
        raise SystemExit(f"capture failed:\n{proc.describe()}")


async def session(ns_addr: str) -> None:
    producer = await start_producer(ns_addr, TOPIC, count=3, tags="TagA", keys="k{i}", producer_group="PG_VECTOR",
                                    instance_name="vector-producer")  # fmt: skip
    await check(producer, await producer.wait_exit(60) == 0 and len(producer.find("sent")) == 3)

    consumer = await start_consumer(ns_addr, "CG_VECTOR", TOPIC, instance_name="vector-consumer", options=OPTIONS,
                                    fail={"bodyMatches": "^msg-1$", "times": 1})  # fmt: skip
    await consumer.wait_for_count(lambda e: e.get("event") == "msg", 4, timeout=60)
    await asyncio.sleep(2.5)  # two offset persist rounds (UPDATE_CONSUMER_OFFSET) make it into the capture
    await check(consumer, await consumer.stop() == 0)

    fallback = await start_consumer(ns_addr, FORCED_NOT_FOUND_GROUP, TOPIC, instance_name="vector-ts",
                                    options=OPTIONS, consume_from_where="CONSUME_FROM_TIMESTAMP")  # fmt: skip
    await fallback.wait_for_event("ready", timeout=60)
    await asyncio.sleep(1.5)  # its retry-topic subscription completes after ready
    await check(fallback, await fallback.stop() == 0)


async def capture(out_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as data:
        namesrv = NamesrvApp(NamesrvConfig(port=0))
        await namesrv.start()
        broker = BrokerApp(
            BrokerConfig(broker_ip1="127.0.0.1", listen_port=0, namesrv_addr=(namesrv.addr,),
                         message_delay_level=" ".join(["1s"] * 18)),
            StoreConfig(store_path_root_dir=data, mapped_file_size_commit_log=4 << 20),
            listen_host="127.0.0.2",
        )  # fmt: skip
        await broker.start()
        force_offset_not_found(broker)
        client = RemotingClient()
        try:
            create = RemotingCommand.request(
                RequestCode.UPDATE_AND_CREATE_TOPIC,
                {"topic": TOPIC, "defaultTopic": "TBW102", "readQueueNums": "4", "writeQueueNums": "4",
                 "perm": "6", "topicFilterType": "SINGLE_TAG", "order": "false"},
            )  # fmt: skip
            r = await client.invoke(f"127.0.0.2:{broker.port}", create, 5)
            assert r.code == 0, r.remark
            ns_relay = CaptureRelay("127.0.0.1", namesrv.port)
            broker_relay = CaptureRelay(
                "127.0.0.2", broker.port, listen_host="127.0.0.1", listen_port=broker.port
            )
            async with ns_relay, broker_relay:
                await session(ns_relay.address)
            ns_relay.save(out_dir / f"{NAME}.ns.json")
            broker_relay.save(out_dir / f"{NAME}.broker.json")
        finally:
            await client.close()
            await broker.stop()
            await namesrv.stop()


if __name__ == "__main__":
    asyncio.run(capture(Path(sys.argv[1])))
