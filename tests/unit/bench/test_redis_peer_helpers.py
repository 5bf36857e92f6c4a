"""Pure helpers of the Redis Streams benchmark peer: percentiles, result shape, server options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orbitmq.cli.bench.redis_peer import (
    APPENDFSYNC,
    RedisServer,
    RedisUnavailable,
    format_result,
    latency_summary,
    make_result,
    percentile,
    redis_server_args,
)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile(values, 0) == 1.0
    assert percentile([3.0, 7.0], 50) == 3.0
    assert percentile([3.0, 7.0], 51) == 7.0
    assert percentile([5.0], 99) == 5.0


def test_percentile_always_returns_an_observation() -> None:
    values = [0.001, 0.002, 0.5, 0.9, 4.0]
    for q in range(101):
        assert percentile(values, q) in values


@pytest.mark.parametrize("q", [-1, 100.5])
def test_percentile_rejects_q_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match="q must be"):
        percentile([1.0], q)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_latency_summary_converts_seconds_to_ms_and_sorts() -> None:
    latencies = [0.010, 0.001, 0.002] + [0.003] * 97  # unsorted on purpose
    assert latency_summary(latencies) == {"p50_ms": 3.0, "p99_ms": 3.0}
    assert latency_summary([0.0015, 0.2], prefix="pop_") == {"pop_p50_ms": 1.5, "pop_p99_ms": 200.0}
    assert latency_summary([]) == {"p50_ms": None, "p99_ms": None}


def test_make_result_has_the_common_benchmark_shape() -> None:
    result = make_result("xadd", 200, 0.5, [0.001] * 200, body_size=128, connections=2)
    assert result == {
        "system": "redis",
        "workload": "xadd",
        "messages": 200,
        "seconds": 0.5,
        "msgs_per_s": 400.0,
        "p50_ms": 1.0,
        "p99_ms": 1.0,
        "params": {"body_size": 128, "connections": 2},
    }
    assert make_result("xadd", 0, 0.0, [])["msgs_per_s"] is None


def test_format_result_is_one_json_line_that_round_trips() -> None:
    result = make_result("xreadgroup_xack", 10, 1.0, [0.002] * 10, batch=32)
    line = format_result(result)
    assert "\n" not in line
    assert json.loads(line) == result


@pytest.mark.parametrize(("flush", "fsync"), [("SYNC_FLUSH", "always"), ("ASYNC_FLUSH", "everysec")])
def test_server_args_mirror_the_flush_mode(flush: str, fsync: str, tmp_path: Path) -> None:
    args = redis_server_args(6390, tmp_path, flush)
    options = dict(zip(args[::2], args[1::2], strict=True))
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == fsync == APPENDFSYNC[flush]
    assert options["--save"] == ""  # AOF only, no RDB snapshots
    assert options["--port"] == "6390" and options["--bind"] == "127.0.0.1"
    assert options["--dir"] == str(tmp_path)


def test_unknown_flush_mode_is_rejected_up_front() -> None:
    with pytest.raises(ValueError, match="SYNC_FLUSH"):
        RedisServer(flush_disk_type="FAST_FLUSH")


async def test_missing_redis_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RedisUnavailable, match="redis-server not found"):
        async with RedisServer(executable=str(tmp_path / "no-such-redis-server")):
            pass
