"""``orbitmq bench txn --quick`` runs as a command and reports what it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_txn_bench_quick_prints_its_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orbitmq.cli", "bench", "txn", "--quick"],
        capture_output=True, text=True, timeout=240, env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["workload"] == "txn"
    [run] = result["runs"]
    assert run["flush"] == "ASYNC_FLUSH"
    assert run["plain"]["messages"] == run["transactional"]["messages"] == 300
    assert run["transactional"]["committed_visible"] == 300  # every committed message became visible, once
    assert run["plain"]["msgs_per_s"] > 0 and run["ratio_tx_to_plain"] > 0
