"""``orbitmq standalone`` (SYNC_FLUSH) is killed with SIGKILL while it delivers timed messages, with a progress
marker far older than the deliveries (``timerFlushIntervalMs`` of a minute); after a restart on the same data
directory every acknowledged timed message is in its topic exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from orbitmq.net import RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import Prop, decode_records, encode_properties

pytestmark = [pytest.mark.fault, pytest.mark.slow]

TOPIC = "TimerKill"
COUNT = 300


async def start_standalone(data: Path) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orbitmq.cli", "standalone", "--data-dir", str(data), "--namesrv-port", "0",
        "--broker-port", "0", "--proxy-port", "0", "--metrics-port", "0", "--flush-disk-type", "SYNC_FLUSH",
        "--log-level", "WARNING",
        "--set", "timerFlushIntervalMs=60000", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line, "standalone exited before it was ready"
        words = line.split()
        if len(words) == 5 and words[1] == "broker" and words[2:4] == ["ready", "on"]:
            return proc, words[4]


async def send(client: RemotingClient, broker: str, i: int, deliver_ms: int) -> bool:
    props = {Prop.TIMER_DELIVER_MS: str(deliver_ms), Prop.UNIQ_KEY: f"U{i:05d}", Prop.KEYS: f"k{i}"}
    fields = {"a": "PG", "b": TOPIC, "c": "TBW102", "d": "4", "e": str(i % 4), "f": "0", "g": "0", "h": "0",
              "i": encode_properties(props), "j": "0", "k": "false"}  # fmt: skip
    resp = await client.invoke(broker, RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, fields, b"b"), 10)
    return resp.code == ResponseCode.SUCCESS


async def delivered(client: RemotingClient, broker: str) -> list[str]:
    keys: list[str] = []
    for q in range(4):
        offset = 0
        while True:
            fields = {"consumerGroup": "G", "topic": TOPIC, "queueId": str(q), "queueOffset": str(offset),
                      "maxMsgNums": "32", "sysFlag": "4", "commitOffset": "0", "suspendTimeoutMillis": "0",
                      "subscription": "*", "subVersion": "0"}  # fmt: skip
            resp = await client.invoke(broker, RemotingCommand.request(RequestCode.PULL_MESSAGE, fields), 10)
            if resp.code != ResponseCode.SUCCESS:
                assert resp.code == ResponseCode.PULL_NOT_FOUND, (resp.code, resp.remark)
                break
            records = decode_records(resp.body_bytes())
            keys.extend(r.properties[Prop.UNIQ_KEY] for r in records)
            offset = int(resp.ext_fields["nextBeginOffset"])
    return keys


async def test_timed_messages_are_delivered_once_across_sigkill(tmp_path: Path) -> None:
    client = RemotingClient()
    proc, broker = await start_standalone(tmp_path / "data")
    try:
        due0 = int(time.time() * 1000) + 2_500
        sent = [i for i in range(COUNT) if await send(client, broker, i, due0 + (i * 37) % 2_000)]
        assert len(sent) == COUNT
        # Kill in the middle of the deliveries (some delivered, some not yet due).
        async with asyncio.timeout(60):
            while len(await delivered(client, broker)) < COUNT // 4:
                await asyncio.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        await client.close()
        client = RemotingClient()
        proc, broker = await start_standalone(tmp_path / "data")
        async with asyncio.timeout(60):
            while len(keys := await delivered(client, broker)) < COUNT:
                await asyncio.sleep(0.1)
        # Everything was due 2 s after the first due time: anything delivered twice would be there by now.
        while time.time() * 1000 < due0 + 2_000 + 1_500:
            await asyncio.sleep(0.1)
        keys = await delivered(client, broker)
        assert sorted(keys) == [f"U{i:05d}" for i in range(COUNT)]
    finally:
        await client.close()
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
