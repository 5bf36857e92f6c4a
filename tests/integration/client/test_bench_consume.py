"""``orbitmq bench consume --quick`` runs end to end (servers in their own processes) and reports what the
docs quote: drain rate, open-loop latency, take-over time, and Redis side by side (or why it is absent)."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from orbitmq.cli.bench.redis_peer import find_redis_server

pytestmark = pytest.mark.slow  # a standalone server, a redis-server and a few seconds of load each


async def test_quick_consume_bench_reports_every_figure() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orbitmq.cli", "bench", "consume", "--quick",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode == 0, err.decode()[-2000:]
    result = json.loads(out)
    ours = result["orbitmq"]
    assert result["workload"] == "consume" and result["params"]["rate"] == 300
    assert ours["drain"]["messages"] == 500 and ours["drain"]["msgs_per_s"] > 0
    assert ours["lost"] == 0 and ours["sent"] > 0
    assert 0 < ours["open_loop"]["p50_ms"] <= ours["open_loop"]["p99_ms"] <= ours["open_loop"]["max_ms"]
    (round_,) = ours["takeover"]["rounds"]
    assert round_["converge_s"] is not None and round_["converge_s"] > 0
    peer = result["redis"]
    if find_redis_server() is None:
        assert "redis-server" in peer["skipped"]
    else:
        assert peer["drain"]["messages"] == 500 and peer["lost"] == 0
        assert peer["open_loop"]["p50_ms"] <= peer["open_loop"]["p99_ms"]
        assert result["ratios_to_redis"]["drain_msgs_per_s"] > 0
