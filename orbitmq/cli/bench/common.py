"""Helpers shared by the benchmark workloads: percentiles, machine description, JSON output."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence

__all__ = ["machine", "percentile", "rate", "timer"]


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of ``samples`` (p in 0..100); 0.0 for no samples."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def timer() -> float:
    return time.perf_counter()


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }
