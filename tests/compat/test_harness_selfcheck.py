"""Proves the compat harness itself works, without any OrbitMQ server.

A tiny fake NameServer written here with hand-built JSON frames (reference §1.2/§1.3) answers every
GET_ROUTEINFO_BY_TOPIC (105) with TOPIC_NOT_EXIST (17). The real ali-ons client, run through the capture relay,
must report that as events and shut down cleanly, and the relay must have recorded the exact bytes.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.compat.alions import NodeProcess, NodeProcesses, NodeProcessExited
from tests.compat.vectors.capture import (
    CLIENT_TO_SERVER,
    SERVER_TO_CLIENT,
    CaptureRelay,
    FrameSplitter,
    decode_header,
    load_capture,
)

GET_ROUTEINFO_BY_TOPIC = 105
TOPIC_NOT_EXIST = 17
REQUEST_CODE_NOT_SUPPORTED = 3


def json_frame(header: dict[str, object], body: bytes = b"") -> bytes:
    """length(4) | serializeType 0 << 24 | headerLength (4) | JSON header | body."""
    head = json.dumps(header).encode()
    return struct.pack(">ii", 4 + len(head) + len(body), len(head)) + head + body


@dataclass
class FakeNameServer:
    """Answers 105 with 17 and anything else with 3; keeps every request frame it received, raw."""

    requests: list[bytes] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                prefix = await reader.readexactly(4)
                (total,) = struct.unpack(">i", prefix)
                rest = await reader.readexactly(total)
                self.requests.append(prefix + rest)
                (header_length,) = struct.unpack_from(">i", rest)
                request = json.loads(rest[4 : 4 + header_length])
                if request["code"] == GET_ROUTEINFO_BY_TOPIC:
                    topic = request["extFields"]["topic"]
                    code, remark = (
                        TOPIC_NOT_EXIST,
                        f"No topic route info in name server for the topic: {topic}",
                    )
                else:
                    code, remark = (
                        REQUEST_CODE_NOT_SUPPORTED,
                        f" request type {request['code']} not supported",
                    )
                writer.write(
                    json_frame(
                        {
                            "code": code,
                            "flag": 1,
                            "language": "JAVA",
                            "opaque": request["opaque"],
                            "remark": remark,
                            "version": 401,
                            "extFields": {},
                        }
                    )
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def fake_namesrv() -> AsyncIterator[FakeNameServer]:
    ns = FakeNameServer()
    await ns.start()
    try:
        yield ns
    finally:
        assert ns.server is not None
        ns.server.close()


async def test_producer_reports_topic_not_exist_and_relay_records_the_route_query(
    alions: NodeProcesses, fake_namesrv: FakeNameServer, tmp_path: Path
) -> None:
    assert fake_namesrv.server is not None
    ns_port = fake_namesrv.server.sockets[0].getsockname()[1]
    topic = "SelfCheckTopic"
    async with CaptureRelay("127.0.0.1", ns_port) as relay:
        producer = await alions.start_producer(relay.address, topic, count=3, producer_group="PG_SELFCHECK")
        ready = await producer.wait_for_event("ready", timeout=30)
        failure = await producer.wait_for_event("send_error", timeout=30)
        assert await producer.wait_exit(timeout=30) == 0, producer.describe()

    # The JSON event protocol: ready, one failed send (stopOnError), done, closed; nothing unparsable.
    assert ready["clientId"].endswith(f"@{producer.pid}"), (
        ready
    )  # ali-ons replaces instanceName DEFAULT by the PID
    assert failure["i"] == 0
    assert failure["error"]["code"] == TOPIC_NOT_EXIST, failure
    assert producer.find("done") == [{"event": "done", "sent": 0, "failed": 1}]
    assert producer.events[-1] == {"event": "closed"}
    assert not producer.find("sent") and not producer.find("_raw") and not producer.find("fatal")

    # The relay saw the route query with the topic, and the reply matched to it by opaque.
    requests = [f for f in relay.frames if f.direction == CLIENT_TO_SERVER]
    query = next(f for f in requests if f.code == GET_ROUTEINFO_BY_TOPIC)
    assert query.ext_fields == {"topic": topic}
    assert query.header is not None and query.header["language"] == "JAVA" and query.header["version"] == 121
    assert query.flag == 0 and query.body_length == 0
    reply = next(f for f in relay.frames if f.direction == SERVER_TO_CLIENT and f.opaque == query.opaque)
    assert reply.code == TOPIC_NOT_EXIST and reply.is_response

    # Byte-exact: what the relay recorded is what the server received, and it survives a save/load.
    assert [f.raw for f in requests] == fake_namesrv.requests
    path = tmp_path / "capture.json"
    relay.save(path)
    assert [f.raw for f in load_capture(path)] == [f.raw for f in relay.frames]


async def test_consumer_starts_reports_errors_and_closes_on_sigterm(
    alions: NodeProcesses, fake_namesrv: FakeNameServer
) -> None:
    assert fake_namesrv.server is not None
    ns_port = fake_namesrv.server.sockets[0].getsockname()[1]
    consumer = await alions.start_consumer(f"127.0.0.1:{ns_port}", "CG_SELFCHECK", "SelfCheckTopic")

    ready = await consumer.wait_for_event("ready", timeout=30)
    assert ready["topics"] == ["SelfCheckTopic", "%RETRY%CG_SELFCHECK"]
    assert ready["clientId"].endswith("@" + consumer.config["instanceName"])
    # ali-ons turns the 17 answers into (non-fatal) error events and keeps running.
    await consumer.wait_for(lambda e: e["event"] == "error" and e["error"].get("code") == TOPIC_NOT_EXIST)
    assert consumer.running

    assert await consumer.stop(timeout=30) == 0, consumer.describe()
    assert consumer.events[-1] == {"event": "closed"}
    assert not consumer.find("msg") and not consumer.find("fatal")


async def test_bad_configuration_exits_2_and_wait_for_reports_the_exit(alions: NodeProcesses) -> None:
    proc = await alions.start("producer.js", {"topic": "T"})  # no nameSrv
    with pytest.raises(NodeProcessExited, match="ended before the awaited event"):
        await proc.wait_for_event("ready", timeout=30)
    assert proc.returncode == 2
    assert proc.find("fatal")[0]["error"] == {"name": "ConfigError", "message": "config.nameSrv is required"}


async def test_stop_falls_back_to_sigkill_and_keeps_odd_or_long_stdout_lines(
    node_environment: None, tmp_path: Path
) -> None:
    script = tmp_path / "ignore_sigterm.js"
    script.write_text(
        "process.on('SIGTERM', () => process.stdout.write(JSON.stringify({event: 'ignored'}) + '\\n'));\n"
        "process.stdout.write('not json\\n' + JSON.stringify({event: 'big', body: 'x'.repeat(300000)}) + '\\n');\n"
        "process.stdout.write(JSON.stringify({event: 'ready'}) + '\\n');\n"
        "setInterval(() => {}, 1000);\n"
    )
    proc = await NodeProcess(str(script), {}).start()
    try:
        await proc.wait_for_event("ready", timeout=30)
        assert await proc.stop(timeout=2) == -9  # SIGTERM was ignored, so SIGKILL ended it
        assert proc.find("ignored")
        assert proc.events[0] == {"event": "_raw", "line": "not json"}
        assert len(proc.events[1]["body"]) == 300_000  # lines far beyond asyncio's 64 KiB default
    finally:
        await proc.kill()


def test_frame_splitter_gives_the_same_frames_whole_or_byte_by_byte() -> None:
    frames = [
        json_frame({"code": 105, "flag": 0, "opaque": n, "extFields": {"topic": "T"}}) for n in range(3)
    ]
    frames.append(json_frame({"code": 0, "flag": 1, "opaque": 9}, body=b"\x00\x01payload"))
    stream = b"".join(frames)

    whole = FrameSplitter()
    assert whole.feed(stream) == frames and whole.pending == 0
    single = FrameSplitter()
    assert [f for i in range(len(stream)) for f in single.feed(stream[i : i + 1])] == frames

    header, body_length = decode_header(frames[-1])
    assert header == {"code": 0, "flag": 1, "opaque": 9} and body_length == 9
    assert decode_header(struct.pack(">ii", 6, 1 << 24 | 2) + b"\x00\x01") == (
        None,
        0,
    )  # ROCKETMQ-typed: raw only


def test_frame_splitter_stops_splitting_a_stream_that_is_not_remoting() -> None:
    splitter = FrameSplitter()
    assert splitter.feed(b"GET / HTTP/1.1\r\n\r\n") == []
    assert splitter.broken
    assert splitter.feed(json_frame({"code": 1})) == []
