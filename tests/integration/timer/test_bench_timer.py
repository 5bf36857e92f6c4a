"""``orbitmq bench timer --quick`` runs as a command and reports what it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_timer_bench_quick_prints_its_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orbitmq.cli", "bench", "timer", "--quick"],
        capture_output=True, text=True, timeout=240, env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["workload"] == "timer" and result["plain_put"]["msgs_per_s"] > 0
    timed = result["timer"]
    assert timed["messages"] == 20_000 and timed["delivered"] + timed["stored_directly"] == 20_000
    assert timed["lateness"]["early"] == 0 and timed["lateness"]["p99_ms"] >= timed["lateness"]["p50_ms"] >= 0
    assert timed["schedule_msgs_per_s"] > 0 and timed["peak_pending"] > 0
    delay = result["delay_level_1s"]
    assert delay["delivered"] == delay["messages"] == 20_000 and delay["lateness"]["early"] == 0
    assert set(result["ratios"]) == {"schedule_vs_plain_put", "timer_p99_vs_delay_level_p99"}
