"""``orbitmq bench rebalance --quick`` runs as a command and reports both policies side by side. Only request
counts are checked (they follow from the design), never times."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_rebalance_bench_quick_prints_both_policies() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orbitmq.cli", "bench", "rebalance", "--quick"],
        capture_output=True, text=True, timeout=180, env=os.environ.copy(), check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["workload"] == "rebalance"
    assert result["group"] == {"members": 4, "topics": 8, "pop_topics": 4, "queues_per_topic": 8}
    mixed, upstream = result["mixed"], result["upstream"]
    # Upstream's policy asks the broker for every topic every round; ours asks for the member list once.
    assert upstream["steady"]["requests"]["GET_CONSUMER_LIST_BY_GROUP"] == 0
    assert upstream["steady"]["requests"]["QUERY_ASSIGNMENT"] > 0
    assert mixed["steady"]["requests"]["QUERY_ASSIGNMENT"] == 0  # POP assignments did not change
    assert mixed["steady"]["requests"]["GET_CONSUMER_LIST_BY_GROUP"] > 0
    assert 3 * mixed["steady"]["requests_per_minute"] < upstream["steady"]["requests_per_minute"]
    assert (
        mixed["membership_changes"]["requests_per_change"]
        < upstream["membership_changes"]["requests_per_change"]
    )
    for policy in (mixed, upstream):
        changes = policy["membership_changes"]
        for key in ("join_decided_ms", "leave_decided_ms", "join_held_ms", "leave_held_ms"):
            assert len(changes[key]["samples"]) == 1 and changes[key]["p50"] > 0
    assert set(result["ratios"]) >= {
        "requests_per_minute_mixed_over_upstream",
        "join_decided_ms_p50_mixed_over_upstream",
    }
