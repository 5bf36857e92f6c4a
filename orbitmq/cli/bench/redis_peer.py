"""Redis Streams as a peer system for side-by-side benchmarks.

A real ``redis-server`` (Debian package ``redis-server``; ``make bench`` installs it) is started on a free
loopback port in a temporary directory with an append-only file whose fsync policy mirrors OrbitMQ's flush
mode, and driven with redis-py's asyncio client:

- ``xadd_throughput``: producers appending to one stream (XADD), per-send latency;
- ``xreadgroup_xack``: a consumer group draining a backlog (XREADGROUP + XACK), per-ack latency.

Both return the same result shape as OrbitMQ's own benchmarks (see :func:`make_result`). Command line::

    python -m orbitmq.cli.bench.redis_peer xadd --total 100000 --flush-disk-type SYNC_FLUSH
    python -m orbitmq.cli.bench.redis_peer consume --backlog 100000 --batch 32 --consumers 4
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

__all__ = [
    "APPENDFSYNC",
    "RedisServer",
    "RedisUnavailable",
    "find_redis_server",
    "format_result",
    "latency_summary",
    "make_result",
    "percentile",
    "redis_server_args",
    "xadd_throughput",
    "xreadgroup_xack",
]

#: OrbitMQ flushDiskType → Redis appendfsync: SYNC_FLUSH acknowledges after fsync (``always``),
#: ASYNC_FLUSH after the write with a background flush (``everysec``).
APPENDFSYNC = {"ASYNC_FLUSH": "everysec", "SYNC_FLUSH": "always"}

_READY_LINE = "Ready to accept connections"
_LOG_TAIL_LINES = 50


class RedisUnavailable(RuntimeError):
    """``redis-server`` is not installed or did not come up."""


def find_redis_server() -> str | None:
    """Path of ``redis-server`` on PATH, or None (it is an optional benchmark dependency)."""
    return shutil.which("redis-server")


def redis_server_args(port: int, data_dir: Path, flush_disk_type: str) -> list[str]:
    """Command-line options for a throw-away, loopback-only, AOF-persisted redis-server."""
    try:
        appendfsync = APPENDFSYNC[flush_disk_type]
    except KeyError:
        raise ValueError(
            f"flush_disk_type must be one of {sorted(APPENDFSYNC)}, got {flush_disk_type!r}"
        ) from None
    return [
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", appendfsync,
        "--save", "",  # no RDB snapshots: the AOF is the only persistence, like a commit log
        "--daemonize", "no",
        "--logfile", "",  # log to stdout, where RedisServer watches for the ready line
    ]  # fmt: skip


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``async with RedisServer(flush_disk_type="SYNC_FLUSH") as server: server.url`` — a private
    redis-server for the duration of the block; stopped (SIGTERM, then SIGKILL) and its temp dir removed."""

    def __init__(
        self,
        *,
        flush_disk_type: str = "ASYNC_FLUSH",
        data_dir: str | Path | None = None,
        executable: str | None = None,
        startup_timeout: float = 15.0,
    ) -> None:
        redis_server_args(0, Path("."), flush_disk_type)  # validates flush_disk_type now, not at start
        self.flush_disk_type = flush_disk_type
        self.port = 0
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._executable = executable
        self._startup_timeout = startup_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._log: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL_LINES)
        self._log_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def data_dir(self) -> Path:
        assert self._data_dir is not None, "server not started"
        return self._data_dir

    @property
    def log_tail(self) -> str:
        return "".join(self._log)

    async def __aenter__(self) -> RedisServer:
        executable = self._executable or find_redis_server()
        if executable is None or shutil.which(executable) is None:
            raise RedisUnavailable(
                "redis-server not found (Debian package `redis-server`; `make bench` installs it)"
            )
        if self._data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="orbitmq-bench-redis-")
            self._data_dir = Path(self._tmp.name)
        try:
            # A port picked here can be taken before redis binds it; a few attempts make that harmless.
            for attempt in range(3):
                self.port = _free_port()
                if await self._start(executable):
                    return self
                if attempt == 2 or "Address already in use" not in self.log_tail:
                    break
            raise RedisUnavailable(f"redis-server did not start\n{self.log_tail}")
        except BaseException:
            await self.__aexit__(None, None, None)
            raise

    async def __aexit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()  # redis fsyncs the AOF and exits on SIGTERM
            try:
                async with asyncio.timeout(10):
                    await self._proc.wait()
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._log_task is not None:
            await self._log_task
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    async def _start(self, executable: str) -> bool:
        self._log.clear()
        self._proc = await asyncio.create_subprocess_exec(
            executable,
            *redis_server_args(self.port, self.data_dir, self.flush_disk_type),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        ready = asyncio.Event()
        self._log_task = asyncio.create_task(self._read_log(ready))
        waiters = [asyncio.create_task(ready.wait()), asyncio.create_task(self._proc.wait())]
        try:
            async with asyncio.timeout(self._startup_timeout):
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise RedisUnavailable(
                f"redis-server not ready after {self._startup_timeout} s\n{self.log_tail}"
            ) from None
        finally:
            for waiter in waiters:
                waiter.cancel()
        if not ready.is_set():
            await self._log_task
            return False
        client = aioredis.Redis.from_url(self.url)
        try:
            if not await client.ping():
                raise RedisUnavailable(f"redis-server does not answer PING\n{self.log_tail}")
        finally:
            await client.aclose()
        return True

    async def _read_log(self, ready: asyncio.Event) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for raw in self._proc.stdout:
            line = raw.decode("utf-8", "replace")
            self._log.append(line)
            if _READY_LINE in line:
                ready.set()


# -- results ----------------------------------------------------------------------------------------------
def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values: the smallest value with at least q% of the
    values at or below it (so it is always one of the observations)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_summary(latencies_s: Iterable[float], prefix: str = "") -> dict[str, float | None]:
    """``{prefix}p50_ms`` and ``{prefix}p99_ms`` of latencies given in seconds (None when there are none)."""
    values = sorted(latencies_s)
    if not values:
        return {f"{prefix}p50_ms": None, f"{prefix}p99_ms": None}
    return {f"{prefix}p{q}_ms": round(percentile(values, q) * 1000, 3) for q in (50, 99)}


def make_result(
    workload: str, messages: int, seconds: float, latencies_s: Iterable[float], **params: Any
) -> dict[str, Any]:
    """The result shape every benchmark prints: system, workload, messages, seconds, msgs_per_s, p50_ms,
    p99_ms, then ``params`` (what was run). Extra metrics are added by the caller."""
    return {
        "system": "redis",
        "workload": workload,
        "messages": messages,
        "seconds": round(seconds, 6),
        "msgs_per_s": round(messages / seconds, 1) if seconds > 0 else None,
        **latency_summary(latencies_s),
        "params": params,
    }


def format_result(result: dict[str, Any]) -> str:
    """One JSON line (what the benchmark commands print)."""
    return json.dumps(result, sort_keys=False, separators=(",", ":"))


# -- workloads ----------------------------------------------------------------------------------------------
def _split(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal counts."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


async def xadd_throughput(
    url: str,
    total: int,
    body_size: int = 1024,
    connections: int = 4,
    window: int = 16,
    *,
    stream: str = "bench-xadd",
) -> dict[str, Any]:
    """``total`` XADDs of a ``body_size``-byte field over ``connections`` connections. redis-py does not
    multiplex one connection, so ``window`` is the number of XADDs pipelined per round trip on each
    connection; every XADD of a round trip gets that round trip's latency."""
    if total < 1 or connections < 1 or window < 1:
        raise ValueError("total, connections and window must be >= 1")
    body = b"x" * body_size
    latencies: list[float] = []
    clients = [aioredis.Redis.from_url(url, single_connection_client=True) for _ in range(connections)]
    try:
        await clients[0].delete(stream)
        for client in clients:
            await client.ping()  # connect before the clock starts

        async def produce(client: aioredis.Redis, count: int) -> None:
            while count > 0:
                n = min(window, count)
                pipe = client.pipeline(transaction=False)
                for _ in range(n):
                    pipe.xadd(stream, {"body": body})
                start = time.perf_counter()
                await pipe.execute()
                latencies.extend([time.perf_counter() - start] * n)
                count -= n

        start = time.perf_counter()
        await asyncio.gather(
            *(produce(c, n) for c, n in zip(clients, _split(total, connections), strict=True))
        )
        seconds = time.perf_counter() - start
        stored = await clients[0].xlen(stream)
    finally:
        for client in clients:
            await client.aclose()
    result = make_result(
        "xadd", total, seconds, latencies, body_size=body_size, connections=connections, window=window
    )
    result["stream_length"] = stored
    return result


async def _fill_backlog(
    client: aioredis.Redis, stream: str, group: str, backlog: int, body_size: int
) -> None:
    await client.delete(stream)
    await client.xgroup_create(stream, group, id="0", mkstream=True)
    body = b"x" * body_size
    for done in range(0, backlog, 1000):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(1000, backlog - done)):
            pipe.xadd(stream, {"body": body})
        await pipe.execute()


async def xreadgroup_xack(
    url: str,
    backlog: int,
    batch: int = 32,
    consumers: int = 4,
    body_size: int = 1024,
    *,
    stream: str = "bench-consume",
    group: str = "bench",
) -> dict[str, Any]:
    """A consumer group drains a pre-filled ``backlog``: each of ``consumers`` connections loops
    XREADGROUP (COUNT ``batch``) then XACK of what it got, until nothing new is left. ``p50_ms``/``p99_ms``
    are per-XACK latencies; ``pop_p50_ms``/``pop_p99_ms`` per-XREADGROUP; ``pending_after`` must be 0."""
    if backlog < 1 or batch < 1 or consumers < 1:
        raise ValueError("backlog, batch and consumers must be >= 1")
    ack_latencies: list[float] = []
    pop_latencies: list[float] = []
    clients = [aioredis.Redis.from_url(url, single_connection_client=True) for _ in range(consumers)]
    try:
        await _fill_backlog(clients[0], stream, group, backlog, body_size)
        for client in clients:
            await client.ping()

        async def consume(client: aioredis.Redis, name: str) -> int:
            acked = 0
            while True:
                start = time.perf_counter()
                reply: Any = await client.xreadgroup(group, name, {stream: ">"}, count=batch)
                pop_latencies.append(time.perf_counter() - start)
                ids = [entry_id for _, entries in reply or [] for entry_id, _ in entries]
                if not ids:
                    return acked
                start = time.perf_counter()
                acked += await client.xack(stream, group, *ids)
                ack_latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        counts = await asyncio.gather(*(consume(c, f"consumer-{i}") for i, c in enumerate(clients)))
        seconds = time.perf_counter() - start
        pending = await clients[0].xpending(stream, group)
    finally:
        for client in clients:
            await client.aclose()
    result = make_result(
        "xreadgroup_xack", sum(counts), seconds, ack_latencies,
        backlog=backlog, batch=batch, consumers=consumers, body_size=body_size,
    )  # fmt: skip
    result.update(latency_summary(pop_latencies, prefix="pop_"))
    result["pending_after"] = int(pending["pending"])
    return result


# -- command line -------------------------------------------------------------------------------------------
async def _run(args: argparse.Namespace) -> dict[str, Any]:
    async with RedisServer(flush_disk_type=args.flush_disk_type) as server:
        if args.workload == "xadd":
            result = await xadd_throughput(
                server.url, args.total, args.body_size, args.connections, args.window
            )
        else:
            result = await xreadgroup_xack(
                server.url, args.backlog, args.batch, args.consumers, args.body_size
            )
    result["params"]["flush_disk_type"] = args.flush_disk_type
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Redis Streams peer benchmarks (prints one JSON line).")
    parser.add_argument("workload", choices=["xadd", "consume"])
    parser.add_argument("--flush-disk-type", choices=sorted(APPENDFSYNC), default="ASYNC_FLUSH")
    parser.add_argument("--body-size", type=int, default=1024)
    parser.add_argument("--total", type=int, default=100_000, help="xadd: messages to send")
    parser.add_argument("--connections", type=int, default=4, help="xadd: producer connections")
    parser.add_argument("--window", type=int, default=16, help="xadd: XADDs pipelined per round trip")
    parser.add_argument("--backlog", type=int, default=100_000, help="consume: messages to drain")
    parser.add_argument("--batch", type=int, default=32, help="consume: XREADGROUP COUNT")
    parser.add_argument("--consumers", type=int, default=4, help="consume: consumer connections")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        print(format_result(asyncio.run(_run(args))), flush=True)


if __name__ == "__main__":
    main()
