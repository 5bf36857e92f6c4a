"""``orbitmq bench longpoll``: the gRPC proxy's long polling, with pop-with-notify against plain long polling.

Servers run as separate processes started here on free ports: a NameServer, brokers ``broker-a`` and
``broker-b``, and two proxies (cluster mode) in front of them: one always pop-with-notify
(``grpcClientConsumerPopWithNotifyThreshold`` huge), one always plain long polling (threshold 0). The
benchmark process plays the clients, with the official client's gRPC stubs and the OrbitMQ SDK.

1. **Long polling** (the issue's workload): consumers parked in ``--poll-seconds`` receives (each naming a
   random broker, as the official simple consumers do); single messages sent at random times to random
   brokers over remoting; delivery latency p50/p99/max and false empties (an empty answer given while a
   message had been stored for more than 200 ms and was not yet delivered), for both proxies in the same run.
2. **Threshold sweep**: plain long polling with more and more consumers, reporting the receive rate per
   broker at which false empties stop; the default of ``grpcClientConsumerPopWithNotifyThreshold`` comes from it.
3. **Throughput**: sends and receive+ack through the proxy against the same directly over remoting
   (SEND_MESSAGE_V2; POP_MESSAGE + ACK_MESSAGE), and the per-request cost of the gRPC hop (sequential sends).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from rocketmq.grpc_protocol import definition_pb2 as pb
from rocketmq.grpc_protocol import service_pb2 as spb
from rocketmq.grpc_protocol import service_pb2_grpc as sgrpc

from orbitmq.cli.bench.common import machine, percentile, rate, timer
from orbitmq.client import Message, MessageQueue, Producer
from orbitmq.client.pop import ack_message, pop_message
from orbitmq.net import RemotingClient
from orbitmq.protocol.codes import RequestCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.pop import INIT_MODE_MAX, PopMessageRequestHeader

__all__ = ["LongPollParams", "run_longpoll_bench"]

BROKERS = ("broker-a", "broker-b")
#: An empty answer is false when a message had been stored this long before it and was delivered later.
FALSE_EMPTY_SLACK_S = 0.2
_ids = itertools.count(1)


@dataclass(frozen=True)
class LongPollParams:
    messages: int = 24  # single messages per long-polling run
    consumers: int = 4  # parked consumers in the long-polling runs
    poll_seconds: float = 20.0
    gap_ms: int = 800  # mean gap between sends (uniform 0..2x)
    sweep: tuple[int, ...] = (1, 2, 4, 8)  # consumer counts of the threshold sweep
    sweep_poll_seconds: float = 5.0
    sweep_messages: int = 10
    throughput_messages: int = 1000
    sequential_sends: int = 200

    @classmethod
    def quick(cls) -> LongPollParams:
        return cls(messages=4, consumers=2, poll_seconds=2.0, gap_ms=150, sweep=(1, 4), sweep_poll_seconds=1.0,
                   sweep_messages=3, throughput_messages=60, sequential_sends=20)  # fmt: skip


# -- servers -------------------------------------------------------------------------------------------------
@dataclass
class _Servers:
    namesrv: str
    brokers: dict[str, str]
    notify_proxy: str
    plain_proxy: str
    procs: list[asyncio.subprocess.Process] = field(default_factory=list)


async def _spawn(procs: list[asyncio.subprocess.Process], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orbitmq.cli", *args, "--host", "127.0.0.1", "--port", "0", "--log-level", "WARNING",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    procs.append(proc)
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        while True:
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise RuntimeError(f"orbitmq {args[0]} exited before it was ready")
            if line.startswith(f"orbitmq {args[0]} ready on "):
                return line.split()[-1]


@contextlib.asynccontextmanager
async def _servers() -> AsyncIterator[_Servers]:
    procs: list[asyncio.subprocess.Process] = []
    with tempfile.TemporaryDirectory(prefix="orbitmq-bench-longpoll-") as data:
        try:
            ns = await _spawn(procs, "namesrv")
            addrs = await asyncio.gather(
                *(
                    _spawn(procs, "broker", "--namesrv", ns, "--name", n, "--data-dir", f"{data}/{n}")
                    for n in BROKERS
                )
            )
            brokers = dict(zip(BROKERS, addrs, strict=True))
            fast = [
                "--set",
                "grpcClientConsumerMinLongPollingTimeoutMillis=500",
                "--set",
                "minInvisibleTimeMillsForRecv=1000",
            ]
            threshold = "grpcClientConsumerPopWithNotifyThreshold"
            notify, plain = await asyncio.gather(
                _spawn(procs, "proxy", "--namesrv", ns, *fast, "--set", f"{threshold}=1000000"),
                _spawn(procs, "proxy", "--namesrv", ns, *fast, "--set", f"{threshold}=0"),
            )
            yield _Servers(ns, brokers, notify, plain, procs)
        finally:
            for proc in reversed(procs):
                if proc.returncode is None:
                    proc.terminate()
            for proc in procs:
                await proc.wait()


async def _create_topics(servers: _Servers, *topics: str, queues: int = 4) -> None:
    client = RemotingClient()
    try:
        for topic, addr in itertools.product(topics, servers.brokers.values()):
            fields = {"topic": topic, "defaultTopic": "TBW102", "readQueueNums": str(queues),
                      "writeQueueNums": str(queues), "perm": "6", "topicFilterType": "SINGLE_TAG", "order": "false"}  # fmt: skip
            cmd = RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_TOPIC, fields)
            await client.invoke(addr, cmd, 10)
    finally:
        await client.close()
    await asyncio.sleep(1.0)  # registered with the NameServer: the proxies see both brokers on first use


# -- a raw gRPC client ---------------------------------------------------------------------------------------
class _Grpc:
    def __init__(self, address: str) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        self.stub = sgrpc.MessagingServiceStub(self.channel)
        self.metadata = (("x-mq-client-id", f"bench@{next(_ids)}"), ("x-mq-client-version", "5.1.2"))

    async def receive(self, topic: str, group: str, poll_s: float, broker: str) -> list[Any]:
        mq = pb.MessageQueue(topic=pb.Resource(name=topic), id=0, broker=pb.Broker(name=broker, id=0))
        req = spb.ReceiveMessageRequest(
            group=pb.Resource(name=group), message_queue=mq, batch_size=32,
            filter_expression=pb.FilterExpression(type=pb.FilterType.TAG, expression="*"),
            invisible_duration=_duration(30), long_polling_timeout=_duration(poll_s),
        )  # fmt: skip
        out = []
        async for r in self.stub.ReceiveMessage(req, metadata=self.metadata, timeout=poll_s + 3):
            if r.WhichOneof("content") == "message":
                out.append(r.message)
        return out

    async def ack(self, topic: str, group: str, msgs: list[Any]) -> None:
        entries = [spb.AckMessageEntry(message_id=m.system_properties.message_id,
                                       receipt_handle=m.system_properties.receipt_handle) for m in msgs]  # fmt: skip
        req = spb.AckMessageRequest(
            group=pb.Resource(name=group), topic=pb.Resource(name=topic), entries=entries
        )
        await self.stub.AckMessage(req, metadata=self.metadata, timeout=5)

    async def send(self, topic: str, body: bytes) -> None:
        sp = pb.SystemProperties(message_id=f"01{next(_ids):032X}", body_encoding=pb.Encoding.IDENTITY,
                                 message_type=pb.MessageType.NORMAL)  # fmt: skip
        msg = pb.Message(topic=pb.Resource(name=topic), body=body, system_properties=sp)
        resp = await self.stub.SendMessage(
            spb.SendMessageRequest(messages=[msg]), metadata=self.metadata, timeout=5
        )
        if resp.status.code != pb.Code.OK:
            raise RuntimeError(f"send failed: {resp.status}")

    async def close(self) -> None:
        await self.channel.close()


def _duration(s: float) -> Any:
    from google.protobuf import duration_pb2

    return duration_pb2.Duration(seconds=int(s), nanos=int(s % 1 * 1e9))


# -- 1 and 2: long polling -----------------------------------------------------------------------------------
async def _long_poll_run(
    proxy: str, ns: str, topic: str, group: str, consumers: int, poll_s: float, messages: int, gap_ms: int
) -> dict[str, Any]:
    run = f"{group}-{random.randrange(1 << 30)}"  # messages of another run on the topic are not counted
    sent: dict[int, float] = {}
    delivered: dict[int, float] = {}
    empties: list[float] = []
    receives = 0
    done = asyncio.Event()
    clients = [_Grpc(proxy) for _ in range(consumers)]

    async def consume(c: _Grpc) -> None:
        nonlocal receives
        while not done.is_set():
            try:
                msgs = await c.receive(topic, group, poll_s, random.choice(BROKERS))
            except grpc.aio.AioRpcError:
                continue
            receives += 1
            now = time.time()
            if not msgs:
                empties.append(now)
            for m in msgs:
                body = json.loads(m.body)
                if body["run"] == run:
                    delivered.setdefault(body["i"], now)
            if msgs:
                await c.ack(topic, group, msgs)
            if len(delivered) >= messages:
                done.set()

    tasks = [asyncio.create_task(consume(c)) for c in clients]
    await asyncio.sleep(0.5)  # parked
    started = time.time()
    async with Producer("bench-longpoll", [ns]) as producer:
        for i in range(messages):
            await asyncio.sleep(random.uniform(0, 2 * gap_ms / 1000))
            broker = random.choice(BROKERS)
            t = time.time()
            await producer.send(
                Message(topic, json.dumps({"run": run, "i": i}).encode()),
                queue=MessageQueue(topic, broker, random.randrange(4)),
            )
            sent[i] = t
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), poll_s + 10)
    done.set()
    elapsed = time.time() - started
    for c in clients:
        await c.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = [(delivered[i] - sent[i]) * 1000 for i in delivered if i in sent]
    false_empty = sum(
        1 for e in empties if any(s < e - FALSE_EMPTY_SLACK_S and delivered.get(i, float("inf")) > e for i, s in sent.items())
    )  # fmt: skip
    return {
        "consumers": consumers, "poll_seconds": poll_s, "messages": messages, "delivered": len(delivered),
        "latency_ms": {"p50": round(percentile(latencies, 50), 1), "p99": round(percentile(latencies, 99), 1),
                       "max": round(max(latencies, default=0.0), 1)},
        "empty_answers": len(empties), "false_empties": false_empty,
        "receives_per_s_per_broker": round(rate(receives, elapsed) / len(BROKERS), 3),
    }  # fmt: skip


# -- 3: throughput and the cost of the hop ------------------------------------------------------------------
async def _send_throughput(servers: _Servers, topic: str, n: int, window: int = 16) -> dict[str, Any]:
    grpcs = [_Grpc(servers.notify_proxy) for _ in range(window)]
    t0 = timer()
    await asyncio.gather(*(_repeat(n // window, lambda c=c: c.send(topic, b"x" * 1024)) for c in grpcs))
    via_proxy = rate(n // window * window, timer() - t0)
    for c in grpcs:
        await c.close()
    async with Producer("bench-direct", [servers.namesrv]) as p:
        await p.send(Message(topic, b"warm-up"))
        t0 = timer()
        await asyncio.gather(
            *(_repeat(n // window, lambda: p.send(Message(topic, b"x" * 1024))) for _ in range(window))
        )
        direct = rate(n // window * window, timer() - t0)
    return {"proxy_msgs_per_s": round(via_proxy), "remoting_msgs_per_s": round(direct),
            "proxy_vs_remoting": round(via_proxy / direct, 2) if direct else None}  # fmt: skip


async def _repeat(times: int, op: Any) -> None:
    for _ in range(times):
        await op()


async def _receive_throughput(servers: _Servers, topic: str, n: int, window: int = 4) -> dict[str, Any]:
    async def fill() -> None:
        async with Producer("bench-fill", [servers.namesrv]) as p:
            await asyncio.gather(
                *(_repeat(n // 8, lambda: p.send(Message(topic, b"y" * 1024))) for _ in range(8))
            )

    await fill()
    got = 0
    clients = [_Grpc(servers.notify_proxy) for _ in range(window)]

    async def grpc_loop(c: _Grpc) -> None:
        nonlocal got
        while got < n // 8 * 8:
            msgs = await c.receive(topic, "bench-recv-proxy", 0.5, random.choice(BROKERS))
            if not msgs:
                return
            await c.ack(topic, "bench-recv-proxy", msgs)
            got += len(msgs)

    t0 = timer()
    await asyncio.gather(*(grpc_loop(c) for c in clients))
    via_proxy = rate(got, timer() - t0)
    for c in clients:
        await c.close()
    remoting = RemotingClient()
    got_direct = 0

    async def direct_loop(w: int) -> None:
        nonlocal got_direct
        empty_rounds = 0
        while got_direct < n // 8 * 8 and empty_rounds < len(BROKERS):
            name = BROKERS[(w + got_direct) % len(BROKERS)]

            async def invoke(
                cmd: RemotingCommand, timeout_s: float, addr: str = servers.brokers[name]
            ) -> RemotingCommand:
                return await remoting.invoke(addr, cmd, timeout_s)

            header = PopMessageRequestHeader(
                "bench-recv-direct",
                topic,
                -1,
                32,
                30_000,
                0,
                int(time.time() * 1000),
                INIT_MODE_MAX,
                "TAG",
                "*",
            )
            result = await pop_message(invoke, name, header, 5)
            if not result.messages:
                empty_rounds += 1
                continue
            empty_rounds = 0
            for m in result.messages:
                await ack_message(invoke, "bench-recv-direct", topic, m.extra_info, 5)
            got_direct += len(result.messages)

    t0 = timer()
    await asyncio.gather(*(direct_loop(w) for w in range(window)))
    direct = rate(got_direct, timer() - t0)
    await remoting.close()
    return {"proxy_msgs_per_s": round(via_proxy), "remoting_msgs_per_s": round(direct), "proxy_received": got,
            "remoting_received": got_direct, "proxy_vs_remoting": round(via_proxy / direct, 2) if direct else None}  # fmt: skip


async def _hop_cost(servers: _Servers, topic: str, n: int) -> dict[str, Any]:
    c = _Grpc(servers.notify_proxy)
    await c.send(topic, b"warm-up")
    proxy_lat = []
    for _ in range(n):
        t0 = timer()
        await c.send(topic, b"z" * 128)
        proxy_lat.append((timer() - t0) * 1e6)
    await c.close()
    direct_lat = []
    async with Producer("bench-hop", [servers.namesrv]) as p:
        await p.send(Message(topic, b"warm-up"))
        for _ in range(n):
            t0 = timer()
            await p.send(Message(topic, b"z" * 128))
            direct_lat.append((timer() - t0) * 1e6)
    p50p, p50d = percentile(proxy_lat, 50), percentile(direct_lat, 50)
    return {"proxy_send_p50_us": round(p50p), "remoting_send_p50_us": round(p50d),
            "grpc_hop_overhead_us": round(p50p - p50d)}  # fmt: skip


async def _run(params: LongPollParams) -> dict[str, Any]:
    async with _servers() as servers:
        await _create_topics(servers, "BenchLongPoll", "BenchSweep", "BenchThroughput")
        long_poll = {}
        for mode, proxy in (
            ("pop_with_notify", servers.notify_proxy),
            ("plain_long_polling", servers.plain_proxy),
        ):
            long_poll[mode] = await _long_poll_run(
                proxy, servers.namesrv, "BenchLongPoll", f"G-{mode}", params.consumers, params.poll_seconds,
                params.messages, params.gap_ms,
            )  # fmt: skip
        sweep = [
            await _long_poll_run(
                servers.plain_proxy,
                servers.namesrv,
                "BenchSweep",
                f"G-sweep-{n}",
                n,
                params.sweep_poll_seconds,
                params.sweep_messages,
                params.gap_ms // 2,
            )
            for n in params.sweep
        ]
        return {
            "workload": "longpoll",
            "machine": machine(),
            "params": {k: v for k, v in params.__dict__.items()},
            "long_polling": long_poll,
            "plain_sweep": sweep,
            "send": await _send_throughput(servers, "BenchThroughput", params.throughput_messages),
            "receive_ack": await _receive_throughput(servers, "BenchThroughput", params.throughput_messages),
            "hop": await _hop_cost(servers, "BenchThroughput", params.sequential_sends),
        }


def run_longpoll_bench(params: LongPollParams) -> dict[str, Any]:
    return asyncio.run(_run(params))
