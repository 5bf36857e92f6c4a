"""``orbitmq bench produce``: 1 KiB sends over remoting (SEND_MESSAGE_V2), against Redis Streams ``XADD``.

Both servers run as separate processes on this machine, started by the benchmark on free ports; the same
Python client concurrency (connections times in-flight window) drives both, in the same run. Redis runs with
``appendfsync everysec`` for ASYNC_FLUSH and ``always`` for SYNC_FLUSH.
"""

from __future__ import annotations

import asyncio
from typing import Any

from orbitmq.cli.bench.common import machine, percentile, rate, timer
from orbitmq.cli.bench.servers import standalone_process
from orbitmq.net import RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

__all__ = ["run_produce_bench"]

BODY = b"x" * 1024
TOPIC = "BenchProduce"


async def orbit_sends(broker: str, total: int, connections: int, window: int) -> dict[str, Any]:
    clients = [RemotingClient() for _ in range(connections)]
    latencies: list[float] = []
    sent = 0
    errors = 0
    per_worker = total // (connections * window)

    async def worker(client: RemotingClient, wid: int) -> None:
        nonlocal sent, errors
        for i in range(per_worker):
            fields = {
                "a": "bench-producer", "b": TOPIC, "c": "TBW102", "d": "8", "e": str((wid + i) % 8), "f": "0",
                "g": str(int(timer() * 1000)), "h": "0", "i": "", "j": "0", "k": "false",
            }  # fmt: skip
            t0 = timer()
            resp = await client.invoke(
                broker, RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, fields, BODY), 10
            )
            latencies.append((timer() - t0) * 1000)
            if resp.code == ResponseCode.SUCCESS:
                sent += 1
            else:
                errors += 1

    # warm up: creates the topic and the connections
    for c in clients:
        await c.invoke(broker, RemotingCommand.request(RequestCode.SEND_MESSAGE_V2, {
            "a": "bench-producer", "b": TOPIC, "c": "TBW102", "d": "8", "e": "0", "f": "0", "g": "0", "h": "0",
            "i": "", "j": "0", "k": "false"}, BODY), 10)  # fmt: skip
    start = timer()
    await asyncio.gather(*(worker(c, ci * window + w) for ci, c in enumerate(clients) for w in range(window)))
    elapsed = timer() - start
    for c in clients:
        await c.close()
    return {
        "system": "orbitmq",
        "messages": sent,
        "errors": errors,
        "msgs_per_s": round(rate(sent, elapsed)),
        "p50_ms": round(percentile(latencies, 50), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
    }


async def _main(total: int, configs: list[tuple[int, int]]) -> dict[str, Any]:
    from orbitmq.cli.bench.redis_peer import RedisServer, xadd_throughput

    runs: list[dict[str, Any]] = []
    for flush in ("ASYNC_FLUSH", "SYNC_FLUSH"):
        for connections, window in configs:
            async with standalone_process(flush) as server:
                ours = await orbit_sends(server.broker, total, connections, window)
            async with RedisServer(flush_disk_type=flush) as redis:
                peer = await xadd_throughput(redis.url, total, 1024, connections, window)
            runs.append(
                {
                    "flush": flush,
                    "connections": connections,
                    "window": window,
                    "orbitmq": ours,
                    "redis": {k: peer[k] for k in ("messages", "msgs_per_s", "p50_ms", "p99_ms")},
                    "ratio_to_redis": round(ours["msgs_per_s"] / peer["msgs_per_s"], 3)
                    if peer["msgs_per_s"]
                    else None,
                }
            )
    return {"workload": "produce", "machine": machine(), "body_bytes": len(BODY), "runs": runs}


def run_produce_bench(total: int = 40_000, configs: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    return asyncio.run(_main(total, configs or [(1, 32), (4, 16)]))
