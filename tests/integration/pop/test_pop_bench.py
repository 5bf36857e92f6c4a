"""``orbitmq bench pop --quick`` runs as a command and reports what it promises: per flush mode, sync and
async CK/ACK drains of the whole backlog, their ratio, and the Redis Streams peer when redis-server exists."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from orbitmq.cli.bench.redis_peer import find_redis_server

pytestmark = pytest.mark.slow


def test_pop_bench_quick_prints_its_json() -> None:
    redis = find_redis_server() is not None
    cmd = [sys.executable, "-m", "orbitmq.cli", "bench", "pop", "--quick", *([] if redis else ["--no-redis"])]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=os.environ.copy(), check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["workload"] == "pop" and result["backlog"] == 2000 and result["batch"] == 32
    assert [r["flush"] for r in result["results"]] == ["ASYNC_FLUSH", "SYNC_FLUSH"]
    for row in result["results"]:
        for mode in ("sync_ckack", "async_ckack"):
            run = row[mode]
            assert run["messages"] == 2000 and run["errors"] == 0 and run["msgs_per_s"] > 0
            assert 0 < run["ack_p50_ms"] <= run["ack_p99_ms"]
        assert row["async_over_sync"] > 0
        if redis:
            assert row["redis"]["messages"] == 2000 and row["best_over_redis"] > 0
