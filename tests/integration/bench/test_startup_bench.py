"""``orbitmq bench startup --quick`` runs and reports both the server and its bare-Python baseline."""

from __future__ import annotations

import json
import subprocess
import sys


def test_startup_bench_quick() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orbitmq.cli", "bench", "startup", "--quick"],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    result = json.loads(out)
    assert result["workload"] == "startup"
    for side in ("standalone", "baseline_bare_python"):
        assert result[side]["ready_ms_median"] > 0 and result[side]["rss_mib_median"] > 0
    assert result["ratios"]["rss_vs_bare_python"] > 1  # the server holds more than an empty interpreter
