"""``make bench``: every benchmark workload in one run, each with its baseline, JSON to stdout.

Run from a checkout: ``python -m benchmarks.run_all [--quick] [workload ...]``. Results go into
docs/BENCHMARKS.md by hand, with the machine line the output carries. The produce, consume and pop workloads
compare against Redis and need ``redis-server`` on the PATH.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

#: workload → (its full-run arguments, its short-run arguments).
WORKLOADS: dict[str, tuple[list[str], list[str]]] = {
    "store": (["--seconds", "3", "--recovery-mib", "256"], ["--seconds", "0.5", "--recovery-mib", "16"]),
    "startup": ([], ["--quick"]),
    "produce": ([], ["--messages", "2000"]),
    "consume": ([], ["--quick"]),
    "pop": ([], ["--quick"]),
    "filter": ([], ["--quick"]),
    "timer": ([], ["--quick"]),
    "txn": ([], ["--quick"]),
    "offsets": ([], ["--quick"]),
    "rebalance": ([], ["--quick"]),
    "longpoll": ([], ["--quick"]),
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short runs, to check the benchmarks work")
    parser.add_argument("workloads", nargs="*", help=f"only these (default: all of {', '.join(WORKLOADS)})")
    args = parser.parse_args()
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(unknown)}")
    results = []
    for workload in args.workloads or list(WORKLOADS):
        full, quick = WORKLOADS[workload]
        argv = [sys.executable, "-m", "orbitmq.cli", "bench", workload, *(quick if args.quick else full)]
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
