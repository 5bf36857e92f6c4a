"""``make bench``: every benchmark workload in one run, each with its baseline, JSON to stdout.

Run from a checkout: ``python -m benchmarks.run_all [--quick]``. Results go into docs/BENCHMARKS.md by hand,
with the machine line the output carries.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

WORKLOADS: list[list[str]] = [
    ["store", "--seconds", "3", "--recovery-mib", "256"],
    ["startup"],
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short runs, to check the benchmarks work")
    args = parser.parse_args()
    results = []
    for workload in WORKLOADS:
        argv = [sys.executable, "-m", "orbitmq.cli", "bench", *workload]
        if args.quick and workload[0] == "store":
            argv = [
                sys.executable,
                "-m",
                "orbitmq.cli",
                "bench",
                "store",
                "--seconds",
                "0.5",
                "--recovery-mib",
                "16",
            ]
        if args.quick and workload[0] == "startup":
            argv.append("--quick")
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
