"""``orbitmq bench offsets --quick`` runs as a command and reports what it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_offsets_bench_quick_prints_its_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orbitmq.cli", "bench", "offsets", "--quick"],
        capture_output=True, text=True, timeout=240, env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["workload"] == "offsets" and result["machine"]["cpus"]
    assert result["entries"] == 2 * 2 * 8  # groups, topics, queues per topic
    assert result["copy"]["applied"] == result["sync_by_time"]["applied"] == 32
    assert result["redelivered_per_queue"]["ahead_of_primary"] == 0  # at-least-once: never past the primary
    assert result["ratio_sync_to_copy"] > 0
