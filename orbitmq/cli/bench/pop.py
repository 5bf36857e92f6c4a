"""``orbitmq bench pop``: pop + batch ack of a backlog, synchronous vs asynchronous CK/ACK storage, against
Redis Streams ``XREADGROUP`` + ``XACK`` (issue 5).

For each flush mode (ASYNC_FLUSH, SYNC_FLUSH) one ``orbitmq standalone`` process (fresh data dir, merge
buffer off) is filled with a backlog of 1 KiB messages over eight queues; then ``consumers`` connections
pop batches of 32 (every queue, invisible time 60 s) and ack each batch with one BATCH_ACK_MESSAGE until the
backlog is drained, first with ``appendCkAsync=appendAckAsync=false`` (group ``bench-sync``), then, after a
clean restart with both ``true``, again from the start (group ``bench-async``). Redis runs the same drain
with the same batch size and consumers (``appendfsync everysec`` / ``always``). Reported: pop+ack msgs/s,
ack and pop latency percentiles, the async/sync ratio per flush mode and the ratio to Redis.

The helpers (:func:`start_standalone`, :func:`fill`, :func:`drain`) are also what the pop crash test drives.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orbitmq.cli.bench.common import machine, percentile, rate, timer
from orbitmq.core.errors import ClientError
from orbitmq.net import RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.pop import (
    BatchAck,
    BatchAckMessageRequestBody,
    ExtraInfo,
    PopMessageRequestHeader,
    PopMessageResponseHeader,
    PoppedMessage,
    receipt_handles,
)
from orbitmq.protocol.record import MessageRecord, Prop, decode_records, encode_batch_body

__all__ = ["Server", "drain", "fill", "run_pop_bench", "start_standalone", "stop_standalone"]

BODY = b"x" * 1024
TOPIC = "BenchPop"
QUEUES = 8
BROKER_NAME = "broker-a"


# -- the server ------------------------------------------------------------------------------------------
@dataclass
class Server:
    proc: asyncio.subprocess.Process
    broker: str
    data_dir: str


async def start_standalone(data_dir: str, flush: str, sets: dict[str, str] | None = None) -> Server:
    """``orbitmq standalone`` in its own process on free ports, on ``data_dir`` (kept across restarts)."""
    extra = [arg for k, v in (sets or {}).items() for arg in ("--set", f"{k}={v}")]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orbitmq.cli", "standalone", "--data-dir", data_dir, "--namesrv-port", "0",
        "--broker-port", "0", "--metrics-port", "0", "--proxy-port", "0", "--flush-disk-type", flush,
        "--log-level", "WARNING", *extra, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    addrs: dict[str, str] = {}
    while "standalone" not in addrs:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        if not line:
            raise RuntimeError("orbitmq standalone exited before it was ready")
        words = line.split()
        if len(words) == 5 and words[2:4] == ["ready", "on"]:
            addrs[words[1]] = words[4]
    return Server(proc, addrs["broker"], data_dir)


async def stop_standalone(server: Server, *, kill: bool = False) -> None:
    """SIGTERM (clean: flush, checkpoint) or SIGKILL (a crash), then wait for the process."""
    if server.proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            server.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        await server.proc.wait()


# -- producing ---------------------------------------------------------------------------------------------
async def fill(broker: str, topic: str, total: int, *, batch: int = 64, window: int = 4,
               body_of: Callable[[int], bytes] | None = None) -> int:  # fmt: skip
    """Send ``total`` messages with SEND_BATCH_MESSAGE (``batch`` per request, ``window`` in flight),
    spread round robin over :data:`QUEUES` queues; the number stored."""
    client = RemotingClient()
    stored = 0
    requests = [(i, min(batch, total - i)) for i in range(0, total, batch)]

    async def worker(wid: int) -> None:
        nonlocal stored
        for n, (start, count) in enumerate(requests[wid::window]):
            no_props: Mapping[str, str] = {}
            msgs = [(0, body_of(start + k) if body_of else BODY, no_props) for k in range(count)]
            fields = {
                "a": "bench-pop-producer", "b": topic, "c": "TBW102", "d": str(QUEUES),
                "e": str((wid + n * window) % QUEUES), "f": "0", "g": "0", "h": "0", "i": "", "j": "0",
                "k": "false", "m": "true",
            }  # fmt: skip
            cmd = RemotingCommand.request(RequestCode.SEND_BATCH_MESSAGE, fields, encode_batch_body(msgs))
            resp = await client.invoke(broker, cmd, 30)
            if resp.code != ResponseCode.SUCCESS:
                raise RuntimeError(f"batch send failed: {resp.code} {resp.remark}")
            stored += count

    try:
        await asyncio.gather(*(worker(w) for w in range(window)))
    finally:
        await client.close()
    return stored


# -- consuming ---------------------------------------------------------------------------------------------
@dataclass
class DrainStats:
    acked: int = 0
    pops: int = 0
    empty_pops: int = 0
    errors: int = 0
    ack_latencies_ms: list[float] = field(default_factory=list)
    pop_latencies_ms: list[float] = field(default_factory=list)


def batch_acks(group: str, topic: str, handles: list[ExtraInfo]) -> tuple[BatchAck, ...]:
    """One BatchAck per checkpoint (start offset, queue, kind, pop time), bits relative to its start."""
    by_ck: dict[tuple[int, int, str, int], list[ExtraInfo]] = {}
    for e in handles:
        by_ck.setdefault((e.ck_offset, e.queue_id, e.retry_kind, e.pop_time), []).append(e)
    return tuple(
        BatchAck(group, topic, kind, so, q, es[0].revive_qid, pt, es[0].invisible_time,
                 tuple(sorted({e.queue_offset - so for e in es if e.queue_offset is not None})))
        for (so, q, kind, pt), es in by_ck.items()
    )  # fmt: skip


async def pop_batch(client: RemotingClient, broker: str, topic: str, group: str, batch: int,
                    invisible_ms: int, poll_ms: int = 0) -> tuple[int, list[tuple[MessageRecord, ExtraInfo]]]:  # fmt: skip
    """One POP_MESSAGE over every queue; (response code, [(record, handle)])."""
    header = PopMessageRequestHeader(group, topic, -1, batch, invisible_ms, poll_ms, 0, 0)
    resp = await client.invoke(
        broker, RemotingCommand.request(RequestCode.POP_MESSAGE, header.to_fields()), 30
    )
    if resp.code != ResponseCode.SUCCESS:
        return resp.code, []
    records = decode_records(resp.body_bytes())
    views = [
        PoppedMessage(r.topic, r.queue_id, r.queue_offset, r.properties.get(Prop.POP_CK)) for r in records
    ]
    handles = receipt_handles(PopMessageResponseHeader.from_command(resp), views, BROKER_NAME)
    return resp.code, [(r, ExtraInfo.parse(h)) for r, (h, _) in zip(records, handles, strict=True)]


async def ack_batch(
    client: RemotingClient, broker: str, topic: str, group: str, handles: list[ExtraInfo]
) -> int:
    body = BatchAckMessageRequestBody(BROKER_NAME, batch_acks(group, topic, handles)).encode()
    resp = await client.invoke(broker, RemotingCommand.request(RequestCode.BATCH_ACK_MESSAGE, body=body), 30)
    return resp.code


async def drain(broker: str | Callable[[], str], topic: str, group: str, expected: int, *, consumers: int = 4,
                batch: int = 32, invisible_ms: int = 60_000, poll_ms: int = 0, empty_limit: int = 3,
                on_batch: Callable[[list[MessageRecord]], None] | None = None,
                on_acked: Callable[[list[MessageRecord]], None] | None = None,
                tolerate_errors: bool = False) -> DrainStats:  # fmt: skip
    """Pop and batch-ack until ``expected`` messages are acked (or a consumer saw ``empty_limit`` empty pops
    in a row). ``broker`` may be a function (a crashed broker restarts on another port); with
    ``tolerate_errors`` a failed request is retried instead of ending the drain. ``on_batch`` sees every
    delivery, ``on_acked`` every batch whose ack was answered SUCCESS."""
    stats = DrainStats()
    address = broker if callable(broker) else (lambda: broker)

    async def round_trip(client: RemotingClient) -> bool:
        """One pop and its ack; False when the pop found nothing."""
        addr = address()
        t0 = timer()
        code, got = await pop_batch(client, addr, topic, group, batch, invisible_ms, poll_ms)
        stats.pop_latencies_ms.append((timer() - t0) * 1000)
        stats.pops += 1
        if not got:
            stats.empty_pops += 1
            if code not in (ResponseCode.POLLING_TIMEOUT, ResponseCode.POLLING_FULL):
                stats.errors += 1
            return False
        records = [r for r, _ in got]
        if on_batch is not None:
            on_batch(records)
        t0 = timer()
        code = await ack_batch(client, addr, topic, group, [h for _, h in got])
        stats.ack_latencies_ms.append((timer() - t0) * 1000)
        if code != ResponseCode.SUCCESS:
            stats.errors += 1
            return True
        stats.acked += len(got)
        if on_acked is not None:
            on_acked(records)
        return True

    async def consumer() -> None:
        client = RemotingClient()
        empties = 0
        try:
            while stats.acked < expected and empties < empty_limit:
                try:
                    empties = 0 if await round_trip(client) else empties + 1
                except (ClientError, OSError):
                    if not tolerate_errors:
                        raise
                    stats.errors += 1
                    await asyncio.sleep(0.05)
        finally:
            await client.close()

    await asyncio.gather(*(consumer() for _ in range(consumers)))
    return stats


# -- the benchmark ---------------------------------------------------------------------------------------
def _summary(stats: DrainStats, seconds: float) -> dict[str, Any]:
    return {
        "messages": stats.acked,
        "msgs_per_s": round(rate(stats.acked, seconds)),
        "ack_p50_ms": round(percentile(stats.ack_latencies_ms, 50), 3),
        "ack_p99_ms": round(percentile(stats.ack_latencies_ms, 99), 3),
        "pop_p50_ms": round(percentile(stats.pop_latencies_ms, 50), 3),
        "pop_p99_ms": round(percentile(stats.pop_latencies_ms, 99), 3),
        "errors": stats.errors,
    }


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux ``/proc``), None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


async def _orbit_runs(
    flush: str, backlog: int, consumers: int, batch: int, order: tuple[str, str]
) -> dict[str, Any]:
    """Both CK/ACK modes on one backlog (filled once; each mode drains it with its own group, after a
    clean restart that switches the mode). ``order`` alternates between flush modes to cancel drift."""
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="orbitmq-bench-pop-") as data:
        for n, mode in enumerate(order):
            on = "true" if mode == "async" else "false"
            sets = {"appendCkAsync": on, "appendAckAsync": on, "enablePopBufferMerge": "false"}
            server = await start_standalone(os.path.join(data, "store"), flush, sets)
            try:
                if n == 0:
                    await fill(server.broker, TOPIC, backlog)
                cpu0 = process_cpu_s(server.proc.pid)
                start = timer()
                stats = await drain(
                    server.broker, TOPIC, f"bench-{mode}", backlog, consumers=consumers, batch=batch
                )
                seconds = timer() - start
                cpu1 = process_cpu_s(server.proc.pid)
            finally:
                await stop_standalone(server)
            summary = _summary(stats, seconds)
            if cpu0 is not None and cpu1 is not None and stats.acked:
                summary["broker_cpu_us_per_msg"] = round((cpu1 - cpu0) / stats.acked * 1e6, 1)
            runs[mode] = {"flush": flush, "ck_ack": mode, "run_order": n + 1, **summary}
    return runs


async def _main(backlog: int, consumers: int, batch: int, redis: bool) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    orders = {"ASYNC_FLUSH": ("sync", "async"), "SYNC_FLUSH": ("async", "sync")}
    for flush in ("ASYNC_FLUSH", "SYNC_FLUSH"):
        runs = await _orbit_runs(flush, backlog, consumers, batch, orders[flush])
        sync_run, async_run = runs["sync"], runs["async"]
        entry: dict[str, Any] = {
            "flush": flush,
            "sync_ckack": sync_run,
            "async_ckack": async_run,
            "async_over_sync": round(async_run["msgs_per_s"] / sync_run["msgs_per_s"], 3)
            if sync_run["msgs_per_s"]
            else None,
        }
        if redis:
            from orbitmq.cli.bench.redis_peer import RedisServer, xreadgroup_xack

            async with RedisServer(flush_disk_type=flush) as server:
                peer = await xreadgroup_xack(server.url, backlog, batch, consumers, len(BODY))
            entry["redis"] = {k: peer.get(k) for k in ("messages", "msgs_per_s", "p50_ms", "p99_ms")}
            best = max(sync_run["msgs_per_s"], async_run["msgs_per_s"])
            entry["best_over_redis"] = round(best / peer["msgs_per_s"], 3) if peer.get("msgs_per_s") else None
        results.append(entry)
    return {
        "workload": "pop",
        "machine": machine(),
        "backlog": backlog,
        "batch": batch,
        "consumers": consumers,
        "body_bytes": len(BODY),
        "merge_buffer": False,
        "results": results,
    }


def run_pop_bench(
    backlog: int = 200_000, consumers: int = 4, batch: int = 32, *, quick: bool = False, redis: bool = True
) -> dict[str, Any]:
    """The benchmark; ``quick`` drains 2,000 messages (what the test runs)."""
    if quick:
        backlog = 2_000
    return asyncio.run(_main(backlog, consumers, batch, redis))
