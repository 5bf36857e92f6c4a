"""``orbitmq bench filter --quick`` runs as a command and reports every measurement it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from orbitmq.cli.bench.filter import EXPRESSIONS


def test_filter_bench_quick_prints_its_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orbitmq.cli", "bench", "filter", "--quick"],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["workload"] == "filter" and result["messages"] == 500
    predicate = result["predicate"]
    assert predicate["tag_hash_ns_per_message"] > 0
    assert set(predicate["sql92"]) == set(EXPRESSIONS)
    for row in predicate["sql92"].values():
        assert row["ns_per_message"] > 0 and 0 < row["selected"] < 1
    read = result["read"]
    assert read["none"]["returned"] == 500 and read["tag"]["returned"] == 250 and read["tag"]["vs_tag"] == 1.0
    for label in EXPRESSIONS:
        row = read[f"sql92: {label}"]
        assert 0 < row["returned"] < 500 and row["messages_scanned_per_s"] > 0
    assert set(result["compile_us"]) == set(EXPRESSIONS)
