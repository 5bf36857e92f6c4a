"""``orbitmq bench longpoll --quick`` runs as a command and reports every measurement it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_longpoll_bench_quick_prints_its_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orbitmq.cli", "bench", "longpoll", "--quick"],
        capture_output=True, text=True, timeout=240, env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["workload"] == "longpoll"
    for mode in ("pop_with_notify", "plain_long_polling"):
        run = result["long_polling"][mode]
        assert run["delivered"] == run["messages"] == 4
        assert run["latency_ms"]["max"] >= run["latency_ms"]["p50"] > 0
    assert result["long_polling"]["pop_with_notify"]["false_empties"] == 0
    assert [r["consumers"] for r in result["plain_sweep"]] == [1, 4]
    for part in ("send", "receive_ack"):
        assert result[part]["proxy_msgs_per_s"] > 0 and result[part]["remoting_msgs_per_s"] > 0
    assert result["receive_ack"]["proxy_received"] >= 56
    assert result["hop"]["proxy_send_p50_us"] > 0 and result["hop"]["remoting_send_p50_us"] > 0
