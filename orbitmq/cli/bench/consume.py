"""``orbitmq bench consume``: the SDK's PushConsumer against Redis Streams consumer groups (redis-py
XREADGROUP + XACK), same machine, same run, 1 KiB messages, a group of 4 consumers on each side.

1. **drain**: a backlog of ``backlog`` messages, consumed by a group of 4 started together: msgs/s.
   (Redis: ``redis_peer.xreadgroup_xack`` over the same backlog.)
2. **open loop**: a producer sends at a fixed ``rate`` for ``seconds`` whatever happens to earlier sends
   (an open loop: latency is not hidden by a slow consumer holding the producer back); each body starts
   with its send time, so the consumer gets the end-to-end latency: p50 / p99 / max.
3. **take-over**: still under the same load, one member of the 4 leaves (a clean shutdown) ``rounds``
   times (a new member joins between rounds). OrbitMQ: ``converge_s`` = from the leave until the 3 others
   own every queue exactly once (the broker's NOTIFY_CONSUMER_IDS_CHANGED, not the 20 s timer).
   Both: ``stall_max_ms`` = the worst end-to-end latency of messages sent in the second after the leave.
   Redis stream groups have no queue ownership (any member reads the next entries), so they have nothing
   to converge; their stall is what a leave costs there.

OrbitMQ runs as ``orbitmq standalone`` (ASYNC_FLUSH) and Redis with ``appendfsync everysec``, each in its
own process; the clients of both share this process. Without ``redis-server`` the Redis side says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orbitmq.admin import AdminClient
from orbitmq.cli.bench.common import machine
from orbitmq.cli.bench.redis_peer import RedisServer, RedisUnavailable, latency_summary, xreadgroup_xack
from orbitmq.cli.bench.servers import standalone_process
from orbitmq.client import ConsumeFromWhere, Message, MessageQueue, Producer, PushConsumer
from orbitmq.core.errors import BrokerError, ClientError

__all__ = ["ConsumeBenchParams", "run_consume_bench"]

BODY_BYTES = 1024
GROUP_SIZE = 4
QUEUES = 8
STALL_WINDOW_S = 1.0
_HEAD = struct.Struct(">qq")  # send time (ns since the epoch), sequence number


@dataclass(frozen=True)
class ConsumeBenchParams:
    backlog: int = 20_000
    rate: int = 500
    seconds: float = 10.0
    rounds: int = 3

    @classmethod
    def quick(cls) -> ConsumeBenchParams:
        return cls(backlog=500, rate=300, seconds=1.5, rounds=1)


def children_cpu_s() -> float:
    """CPU seconds used so far by this process's child processes (the server under test), from /proc;
    0.0 where /proc is not there."""
    total = 0
    me = str(os.getpid())
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:  # field 4 (ppid), counted after the ")" that ends the command name
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """CPU of this process (the clients) and of its children (the server) between start() and stop()."""

    client_s: float = 0.0
    server_s: float = 0.0

    def start(self) -> None:
        self._c0, self._s0 = time.process_time(), children_cpu_s()

    def stop(self) -> None:
        self.client_s, self.server_s = time.process_time() - self._c0, children_cpu_s() - self._s0

    def per_message_us(self, messages: int) -> dict[str, float | None]:
        if not messages:
            return {"client_cpu_us_per_msg": None, "server_cpu_us_per_msg": None}
        return {"client_cpu_us_per_msg": round(self.client_s / messages * 1e6),
                "server_cpu_us_per_msg": round(self.server_s / messages * 1e6)}  # fmt: skip


def _body(seq: int) -> bytes:
    head = _HEAD.pack(time.time_ns(), seq)
    return head + b"x" * (BODY_BYTES - len(head))


@dataclass
class Receipts:
    """What consumers got: end-to-end latency by send time, and which sequence numbers (loss, duplicates)."""

    latencies: list[tuple[int, float]] = field(default_factory=list)  # (sent ns, latency s)
    seqs: set[int] = field(default_factory=set)
    duplicates: int = 0

    def record(self, body: bytes) -> None:
        sent_ns, seq = _HEAD.unpack_from(body)
        self.latencies.append((sent_ns, (time.time_ns() - sent_ns) / 1e9))
        if seq in self.seqs:
            self.duplicates += 1
        self.seqs.add(seq)

    def between(self, start_ns: int, end_ns: int) -> list[float]:
        return [lat for sent, lat in self.latencies if start_ns <= sent < end_ns]


class OpenLoop:
    """Fires ``send(body)`` at ``rate`` per second without waiting for earlier sends (bounded in flight)."""

    def __init__(
        self, send: Callable[[bytes], Awaitable[object]], rate: int, inflight_max: int = 5000
    ) -> None:
        self.send, self.rate, self.inflight_max = send, rate, inflight_max
        self.sent = self.errors = self.late = 0
        #: How long each send took to be acknowledged (the produce half of the end-to-end latency).
        self.send_latencies: list[float] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._runner = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._runner is not None:
            await self._runner
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - t0) * self.rate) - self.sent
            for _ in range(max(0, due)):
                if len(self._tasks) >= self.inflight_max:
                    self.late += 1  # the system under test fell this far behind: not sent on time
                    break
                task = asyncio.get_running_loop().create_task(self._one(self.sent))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                self.sent += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.005)

    async def _one(self, seq: int) -> None:
        t0 = time.perf_counter()
        try:
            await self.send(_body(seq))
        except Exception:
            self.errors += 1
        else:
            self.send_latencies.append(time.perf_counter() - t0)


# -- OrbitMQ -----------------------------------------------------------------------------------------------
async def _create_topic(ns: str, producer: Producer, topic: str) -> list[MessageQueue]:
    async with AdminClient(ns) as admin:
        await admin.create_topic(topic, queues=QUEUES)
    for _ in range(200):
        with contextlib.suppress(BrokerError, ClientError):
            route = await producer.instance.route(topic, refresh=True)
            if len(route.subscribe_queues) == QUEUES:
                return sorted(route.subscribe_queues)
        await asyncio.sleep(0.05)
    raise RuntimeError(f"topic {topic} never became routable")


def _member(ns: str, group: str, topic: str, receipts: Receipts) -> PushConsumer:
    c = PushConsumer(group, ns, consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET)
    c.subscribe(topic)
    c.register_listener(lambda m: receipts.record(m.body))
    return c


async def _until(pred: Callable[[], bool], timeout_s: float = 60.0, step_s: float = 0.005) -> None:
    async with asyncio.timeout(timeout_s):
        while not pred():
            await asyncio.sleep(step_s)


async def _orbit_drain(ns: str, producer: Producer, backlog: int) -> dict[str, Any]:
    topic = "BenchConsumeDrain"
    await _create_topic(ns, producer, topic)
    for start in range(0, backlog, 32):  # batches go round robin over the queues
        await producer.send_batch([Message(topic, _body(s)) for s in range(start, min(start + 32, backlog))])
    receipts = Receipts()
    group = [_member(ns, "bench-drain", topic, receipts) for _ in range(GROUP_SIZE)]
    t0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(c.start() for c in group))
    await _until(lambda: len(receipts.seqs) >= backlog, 300)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await asyncio.gather(*(c.shutdown() for c in group))
    return {"messages": len(receipts.seqs), "seconds": round(seconds, 3),
            "msgs_per_s": round(len(receipts.seqs) / seconds), "duplicates": receipts.duplicates,
            "client_cpu_s": round(cpu, 2)}  # fmt: skip


def _owned(group: list[PushConsumer], topic: str) -> list[MessageQueue]:
    return sorted(mq for c in group for mq in c.assigned_queues() if mq.topic == topic)


async def _orbit_live(ns: str, producer: Producer, p: ConsumeBenchParams) -> dict[str, Any]:
    topic = "BenchConsumeLive"
    queues = await _create_topic(ns, producer, topic)
    receipts = Receipts()
    group = [_member(ns, "bench-live", topic, receipts) for _ in range(GROUP_SIZE)]
    for c in group:
        await c.start()
    await _until(lambda: _owned(group, topic) == queues)
    load = OpenLoop(lambda body: producer.send(Message(topic, body)), p.rate)
    meter = CpuMeter()
    meter.start()
    start_ns = time.time_ns()
    load.start()
    await asyncio.sleep(p.seconds)
    steady_end_ns = time.time_ns()
    meter.stop()
    rounds = []
    for _ in range(p.rounds):
        leaving = group.pop()
        leave_ns, t0 = time.time_ns(), time.perf_counter()
        await leaving.shutdown()
        await _until(lambda: _owned(group, topic) == queues)
        converge = time.perf_counter() - t0
        await asyncio.sleep(STALL_WINDOW_S + 0.5)
        rounds.append((leave_ns, converge))
        joining = _member(ns, "bench-live", topic, receipts)
        await joining.start()
        group.append(joining)
        await _until(lambda: _owned(group, topic) == queues and all(c.assigned_queues() for c in group))
        await asyncio.sleep(0.5)
    await load.stop()
    with contextlib.suppress(TimeoutError):
        await _until(lambda: len(receipts.seqs) >= load.sent - load.errors, 30, 0.05)
    for c in group:
        await c.shutdown()
    return _live_result(load, receipts, start_ns, steady_end_ns, rounds, p, meter)


def _live_result(
    load: OpenLoop,
    receipts: Receipts,
    start_ns: int,
    steady_end_ns: int,
    rounds: Sequence[tuple[int, float | None]],
    p: ConsumeBenchParams,
    meter: CpuMeter,
) -> dict[str, Any]:
    steady = receipts.between(start_ns, steady_end_ns)
    out_rounds = []
    for leave_ns, converge in rounds:
        window = receipts.between(leave_ns, leave_ns + int(STALL_WINDOW_S * 1e9))
        out_rounds.append({"converge_s": None if converge is None else round(converge, 3),
                           "stall_max_ms": round(max(window) * 1000, 1) if window else None})  # fmt: skip
    converged = [r["converge_s"] for r in out_rounds if r["converge_s"] is not None]
    return {
        "open_loop": {"rate": p.rate, "seconds": p.seconds, "received": len(steady),
                      **latency_summary(lat for lat in steady),
                      "max_ms": round(max(steady) * 1000, 3) if steady else None,
                      **meter.per_message_us(len(steady))},
        "takeover": {"rounds": out_rounds,
                     "converge_s_median": round(statistics.median(converged), 3) if converged else None,
                     "converge_s_max": max(converged) if converged else None},
        "send_ack": latency_summary(load.send_latencies),
        "sent": load.sent, "send_errors": load.errors, "sent_late": load.late,
        "lost": max(0, load.sent - load.errors - len(receipts.seqs)), "duplicates": receipts.duplicates,
    }  # fmt: skip


async def _orbitmq(p: ConsumeBenchParams) -> dict[str, Any]:
    async with standalone_process("ASYNC_FLUSH") as server:
        producer = Producer("bench-consume-producer", server.namesrv)
        await producer.start()
        try:
            drain = await _orbit_drain(server.namesrv, producer, p.backlog)
            live = await _orbit_live(server.namesrv, producer, p)
        finally:
            await producer.shutdown()
    return {"drain": drain, **live}


# -- Redis Streams -----------------------------------------------------------------------------------------
async def _redis_live(url: str, p: ConsumeBenchParams) -> dict[str, Any]:
    import redis.asyncio as aioredis

    stream, group_name = "bench-consume-live", "bench"
    admin = aioredis.Redis.from_url(url)
    await admin.delete(stream)
    await admin.xgroup_create(stream, group_name, id="$", mkstream=True)
    receipts = Receipts()
    stops: list[asyncio.Event] = []

    async def member(name: str, stop: asyncio.Event) -> None:
        client = aioredis.Redis.from_url(url, single_connection_client=True)
        try:
            while not stop.is_set():
                reply: Any = await client.xreadgroup(group_name, name, {stream: ">"}, count=32, block=100)
                ids = []
                for _, entries in reply or []:
                    for entry_id, fields in entries:
                        receipts.record(fields[b"body"])
                        ids.append(entry_id)
                if ids:
                    await client.xack(stream, group_name, *ids)
        finally:
            await client.aclose()

    tasks: list[asyncio.Task[None]] = []

    def join(i: int) -> None:
        stops.append(asyncio.Event())
        tasks.append(asyncio.get_running_loop().create_task(member(f"c{i}", stops[-1])))

    for i in range(GROUP_SIZE):
        join(i)
    producer = aioredis.Redis.from_url(url, max_connections=64)
    load = OpenLoop(lambda body: producer.xadd(stream, {"body": body}), p.rate, inflight_max=64)
    meter = CpuMeter()
    meter.start()
    start_ns = time.time_ns()
    load.start()
    await asyncio.sleep(p.seconds)
    steady_end_ns = time.time_ns()
    meter.stop()
    rounds: list[tuple[int, float | None]] = []
    for r in range(p.rounds):
        leave_ns = time.time_ns()
        stops.pop(0).set()  # it acks what it read, then stops reading
        await asyncio.sleep(STALL_WINDOW_S + 0.5)
        rounds.append((leave_ns, None))
        join(GROUP_SIZE + r)
        await asyncio.sleep(0.5)
    await load.stop()
    with contextlib.suppress(TimeoutError):
        await _until(lambda: len(receipts.seqs) >= load.sent - load.errors, 30, 0.05)
    for stop in stops:
        stop.set()
    await asyncio.gather(*tasks)
    await producer.aclose()
    await admin.aclose()
    return _live_result(load, receipts, start_ns, steady_end_ns, rounds, p, meter)


async def _redis(p: ConsumeBenchParams) -> dict[str, Any]:
    try:
        async with RedisServer(flush_disk_type="ASYNC_FLUSH") as server:
            drain = await xreadgroup_xack(
                server.url, p.backlog, batch=32, consumers=GROUP_SIZE, body_size=BODY_BYTES
            )
            live = await _redis_live(server.url, p)
    except RedisUnavailable as exc:
        return {"skipped": str(exc).splitlines()[0]}
    drain_out = {k: drain[k] for k in ("messages", "seconds", "msgs_per_s")}
    drain_out["msgs_per_s"] = round(drain_out["msgs_per_s"])
    live["takeover"]["note"] = "stream groups have no queue ownership: nothing converges, any member reads on"
    return {"drain": drain_out, **live}


async def _main(p: ConsumeBenchParams) -> dict[str, Any]:
    ours = await _orbitmq(p)
    peer = await _redis(p)
    ratios: dict[str, float | None] = {}
    if "skipped" not in peer:
        ratios["drain_msgs_per_s"] = round(ours["drain"]["msgs_per_s"] / peer["drain"]["msgs_per_s"], 3)
        theirs_p99, ours_p99 = peer["open_loop"]["p99_ms"], ours["open_loop"]["p99_ms"]
        ratios["open_loop_p99"] = round(ours_p99 / theirs_p99, 2) if ours_p99 and theirs_p99 else None
    return {"workload": "consume", "machine": machine(), "body_bytes": BODY_BYTES, "group_size": GROUP_SIZE,
            "queues": QUEUES, "params": p.__dict__, "orbitmq": ours, "redis": peer,
            "ratios_to_redis": ratios}  # fmt: skip


def run_consume_bench(params: ConsumeBenchParams | None = None) -> dict[str, Any]:
    return asyncio.run(_main(params or ConsumeBenchParams()))
