"""The proxy's in-process connection to its broker is a client channel like any socket: closing an
unrelated remoting connection of that broker must not drop what the proxy registered (its producer groups,
which the broker's transaction back-checks need)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from orbitmq.net import RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

from .conftest import local_stack


async def test_closing_another_connection_keeps_the_local_backends_producer(tmp_path: Path) -> None:
    stack = await local_stack(tmp_path)
    try:
        broker = stack.brokers[0]
        backend = stack.proxy.backend
        body = orjson.dumps({"clientID": "proxy@test", "producerDataSet": [{"groupName": "TxG"}],
                             "consumerDataSet": []})  # fmt: skip
        hb = RemotingCommand.request(RequestCode.HEART_BEAT, {}, body)
        assert (await backend.invoke(broker.config.broker_name, hb, 5.0)).code == ResponseCode.SUCCESS
        producers = broker.producers
        assert producers.group_online("TxG")

        # a few ordinary clients come and go over real sockets
        for _ in range(3):
            client = RemotingClient()
            cmd = RemotingCommand.request(RequestCode.GET_BROKER_RUNTIME_INFO, {})
            assert (await client.invoke(broker.address, cmd, 5.0)).code == ResponseCode.SUCCESS
            await client.close()
        await asyncio.sleep(0.2)  # let the broker run its close callbacks

        assert producers.group_online("TxG")
    finally:
        await stack.stop()
