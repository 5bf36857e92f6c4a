"""The Redis Streams benchmark peer against a real redis-server, with a tiny workload.

redis-server is an optional benchmark dependency (``make bench`` installs it), not a test dependency:
without it these tests are skipped, saying why.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from orbitmq.cli.bench.redis_peer import RedisServer, find_redis_server, xadd_throughput, xreadgroup_xack

pytestmark = pytest.mark.skipif(
    find_redis_server() is None,
    reason="redis-server is not installed (optional benchmark dependency; `make bench` installs it)",
)


async def test_xadd_workload_on_a_sync_flush_server(tmp_path: Path) -> None:
    async with RedisServer(flush_disk_type="SYNC_FLUSH", data_dir=tmp_path) as server:
        client = aioredis.Redis.from_url(server.url)
        try:
            config = await client.config_get("appendfsync")
            assert config == {"appendfsync": "always"}
            result = await xadd_throughput(server.url, 200, body_size=128, connections=2, window=8)
            assert await client.xlen("bench-xadd") == 200
        finally:
            await client.aclose()

    assert server.returncode == 0  # stopped by SIGTERM, cleanly
    assert any(tmp_path.rglob("*.aof")), "the append-only file was not written"
    assert result["workload"] == "xadd" and result["system"] == "redis"
    assert result["messages"] == 200 and result["stream_length"] == 200
    assert result["seconds"] > 0 and result["msgs_per_s"] > 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert result["params"] == {"body_size": 128, "connections": 2, "window": 8}


async def test_consumer_group_drains_and_acks_the_whole_backlog() -> None:
    async with RedisServer(flush_disk_type="ASYNC_FLUSH") as server:
        data_dir = server.data_dir
        result = await xreadgroup_xack(server.url, backlog=200, batch=16, consumers=3, body_size=64)
        client = aioredis.Redis.from_url(server.url)
        try:
            assert (await client.config_get("appendfsync")) == {"appendfsync": "everysec"}
            groups = await client.xinfo_groups("bench-consume")
        finally:
            await client.aclose()

    assert not data_dir.exists(), "the temporary data directory was not removed"
    assert result["messages"] == 200 and result["pending_after"] == 0
    assert groups[0]["pending"] == 0 and groups[0]["entries-read"] == 200
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    assert result["pop_p50_ms"] is not None and result["pop_p50_ms"] <= result["pop_p99_ms"]
