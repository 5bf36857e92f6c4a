"""Capture real ali-ons producer frames for the golden vectors in this directory.

    python -m tests.compat.vectors.remoting.capture_produce tests/compat/vectors/remoting/alions-3.12.0-produce-3.json

ali-ons (tests/compat/node, pinned by package-lock.json) sends 3 messages through the capture relay to a
minimal OrbitMQ RemotingServer that answers the route query (the route points back at the relay, so the
sends are captured too), the sends and the unregisters. Only the client → server frames are golden: the
server → client frames are OrbitMQ's own encoding, kept as the record that ali-ons accepted them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from orbitmq.net import Connection, DispatchTable, RemotingServer, ServerConfig
from orbitmq.protocol.codes import RequestCode
from orbitmq.protocol.command import RemotingCommand
from tests.compat.alions import start_producer
from tests.compat.vectors.capture import CaptureRelay

TOPIC = "VectorTopic"


def dispatch_table(relay_addr: list[str]) -> DispatchTable:
    sent = [0]

    async def route(cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        queue = {
            "brokerName": "broker-a",
            "readQueueNums": 4,
            "writeQueueNums": 4,
            "perm": 6,
            "topicSysFlag": 0,
        }
        broker = {"cluster": "DefaultCluster", "brokerName": "broker-a", "brokerAddrs": {"0": relay_addr[0]}}
        body = {"queueDatas": [queue], "brokerDatas": [broker], "filterServerTable": {}}
        return cmd.response(body=json.dumps(body).encode())

    async def send(cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        n = sent[0]
        sent[0] += 1
        ext = {
            "msgId": f"7F00000100002A9F{n * 200:016X}",
            "queueId": cmd.ext_fields.get("e", "0"),
            "queueOffset": str(n),
            "MSG_REGION": "DefaultRegion",
            "TRACE_ON": "true",
        }
        return cmd.response(ext_fields=ext)

    async def ok(cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        return cmd.response()

    table = DispatchTable()
    table.register(RequestCode.GET_ROUTEINFO_BY_TOPIC, route)
    table.register(RequestCode.SEND_MESSAGE_V2, send)
    table.register(RequestCode.HEART_BEAT, ok)
    table.register(RequestCode.UNREGISTER_CLIENT, ok)
    return table


async def capture(out: Path) -> None:
    relay_addr: list[str] = []
    server = RemotingServer(ServerConfig(port=0), dispatch_table(relay_addr))
    await server.start()
    try:
        async with CaptureRelay("127.0.0.1", server.port) as relay:
            relay_addr.append(relay.address)
            producer = await start_producer(
                relay.address,
                TOPIC,
                count=3,
                tags="TagA",
                keys="k{i}",
                producer_group="PG_VECTOR",
                instance_name="vector",
            )
            if await producer.wait_exit(timeout=60) != 0 or len(producer.find("sent")) != 3:
                raise SystemExit(f"producer failed:\n{producer.describe()}")
        relay.save(out)
    finally:
        await server.stop()


if __name__ == "__main__":
    asyncio.run(capture(Path(sys.argv[1])))
