"""``orbitmq standalone`` (SYNC_FLUSH) is killed with SIGKILL after committing transactions whose op records
were still batched (``transactionOpBatchInterval`` of a minute): after a restart the broker checks them back,
the producer answers COMMIT again, and every transaction's message is in its topic exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import orjson
import pytest

from orbitmq.net import Connection, DispatchTable, RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import Prop, decode_offset_msg_id, decode_records, encode_properties

pytestmark = [pytest.mark.fault, pytest.mark.slow]

TOPIC = "TxKill"
COUNT = 20


async def start_standalone(data: Path) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orbitmq.cli", "standalone", "--data-dir", str(data), "--namesrv-port", "0",
        "--broker-port", "0", "--flush-disk-type", "SYNC_FLUSH", "--log-level", "WARNING",
        "--set", "transactionOpBatchInterval=60000", "--set", "transactionTimeOut=1000",
        "--set", "transactionCheckInterval=500", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line, "standalone exited before it was ready"
        words = line.split()
        if len(words) == 5 and words[1] == "broker" and words[2:4] == ["ready", "on"]:
            return proc, words[4]


class JavaLikeProducer:
    """Sends half messages and answers every check with COMMIT (all local transactions succeeded)."""

    def __init__(self) -> None:
        self.checked: set[str] = set()
        self.client = RemotingClient(
            dispatch=DispatchTable({RequestCode.CHECK_TRANSACTION_STATE: self.on_check})
        )

    async def on_check(self, cmd: RemotingCommand, conn: Connection) -> None:
        f = cmd.ext_fields
        answer = {"producerGroup": "PG", "tranStateTableOffset": f["tranStateTableOffset"],
                  "commitLogOffset": f["commitLogOffset"], "commitOrRollback": "8", "fromTransactionCheck": "true",
                  "msgId": f["msgId"], "transactionId": f["transactionId"], "topic": f["topic"]}  # fmt: skip
        host, port = conn.remote_addr
        await self.client.invoke_oneway(
            f"{host}:{port}", RemotingCommand.request(RequestCode.END_TRANSACTION, answer, oneway=True)
        )
        self.checked.add(f["transactionId"])

    async def heartbeat(self, broker: str) -> None:
        body = orjson.dumps(
            {"clientID": "tx-producer", "consumerDataSet": [], "producerDataSet": [{"groupName": "PG"}]}
        )
        resp = await self.client.invoke(broker, RemotingCommand.request(RequestCode.HEART_BEAT, {}, body), 10)
        assert resp.code == ResponseCode.SUCCESS

    async def send_half(self, broker: str, i: int) -> tuple[int, int]:
        props = {Prop.TRAN_MSG: "true", Prop.PGROUP: "PG", Prop.UNIQ_KEY: f"TX{i:03d}"}
        fields = {"a": "PG", "b": TOPIC, "c": "TBW102", "d": "4", "e": "0", "f": "4", "g": str(int(time.time() * 1000)),
                  "h": "0", "i": encode_properties(props), "j": "0", "k": "false"}  # fmt: skip
        resp = await self.client.invoke(
            broker, RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, fields, b"b"), 10
        )
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        return int(resp.ext_fields["queueOffset"]), decode_offset_msg_id(resp.ext_fields["msgId"])[2]

    async def commit(self, broker: str, i: int, offsets: tuple[int, int]) -> None:
        fields = {"producerGroup": "PG", "tranStateTableOffset": str(offsets[0]), "commitLogOffset": str(offsets[1]),
                  "commitOrRollback": "8", "fromTransactionCheck": "false", "msgId": f"TX{i:03d}"}  # fmt: skip
        resp = await self.client.invoke(
            broker, RemotingCommand.request(RequestCode.END_TRANSACTION, fields), 10
        )
        assert resp.code == ResponseCode.SUCCESS, resp.remark

    async def delivered(self, broker: str) -> list[str]:
        keys: list[str] = []
        offset = 0
        while True:
            fields = {"consumerGroup": "G", "topic": TOPIC, "queueId": "0", "queueOffset": str(offset), "maxMsgNums": "32",
                      "sysFlag": "4", "commitOffset": "0", "suspendTimeoutMillis": "0", "subscription": "*",
                      "subVersion": "0"}  # fmt: skip
            resp = await self.client.invoke(
                broker, RemotingCommand.request(RequestCode.PULL_MESSAGE, fields), 10
            )
            if resp.code != ResponseCode.SUCCESS:
                assert resp.code == ResponseCode.PULL_NOT_FOUND, (resp.code, resp.remark)
                return keys
            keys.extend(r.properties[Prop.UNIQ_KEY] for r in decode_records(resp.body_bytes()))
            offset = int(resp.ext_fields["nextBeginOffset"])


async def test_commits_are_not_repeated_after_sigkill(tmp_path: Path) -> None:
    producer = JavaLikeProducer()
    proc, broker = await start_standalone(tmp_path / "data")
    try:
        await producer.heartbeat(broker)
        for i in range(COUNT):
            offsets = await producer.send_half(broker, i)
            if i % 2 == 0:
                await producer.commit(broker, i, offsets)
        async with asyncio.timeout(30):  # the undecided half is checked and committed too
            while len(await producer.delivered(broker)) < COUNT:
                await asyncio.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        await producer.client.close()

        producer = JavaLikeProducer()
        proc, broker = await start_standalone(tmp_path / "data")
        await producer.heartbeat(broker)
        # Without their op records every transaction looks undecided: all are checked back again ...
        async with asyncio.timeout(30):
            while len(producer.checked) < COUNT:
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # ... and the answers (COMMIT) processed: three check intervals
        keys = await producer.delivered(broker)
        assert sorted(keys) == [f"TX{i:03d}" for i in range(COUNT)]  # ... but none stored twice
    finally:
        await producer.client.close()
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
