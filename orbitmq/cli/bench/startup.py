"""``orbitmq bench startup``: time-to-ready and idle memory of ``orbitmq standalone``.

Each run starts ``orbitmq standalone`` (NameServer + Broker + Proxy + metrics, fresh data dir, free ports) as
a new process and measures the time from the spawn to its ``orbitmq standalone ready on`` line and the CPU
time the process used until then (which, unlike the wall time, does not grow with other load), then, after
an idle pause, its resident memory (``VmRSS`` of ``/proc/<pid>/status``, Linux) and peak (``VmHWM``). The
baseline, measured in the same run the same way, is a bare interpreter (``python -c`` printing a ready
line): what any Python server pays before its own code runs. RocketMQ's own defaults are documented heap
sizes (``docs/BENCHMARKS.md``), not measured here.

Timed runs use compiled bytecode, as an installed package does: the processes get a bytecode cache of their
own (``PYTHONPYCACHEPREFIX`` in the run's temp dir, even where ``PYTHONDONTWRITEBYTECODE`` is set), filled
by a first, separately reported run that compiles every module.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from orbitmq.cli.bench.common import machine, percentile

__all__ = ["run_startup_bench"]

_FREE_PORTS = ["--namesrv-port", "0", "--broker-port", "0", "--proxy-port", "0", "--metrics-port", "0"]
_BARE = [sys.executable, "-c", "import time; print('bare ready', flush=True); time.sleep(3600)"]


def _memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of a live process, in KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def _cpu_ms(pid: int) -> float:
    """User + system CPU time a live process has used, in ms (``/proc/<pid>/stat`` fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _one_run(cmd: list[str], ready_prefix: str, idle_s: float, env: dict[str, str]) -> dict[str, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith(ready_prefix):
                break
        else:
            raise RuntimeError(f"{cmd[:4]} exited (code {proc.wait()}) before printing {ready_prefix!r}")
        ready_s = time.perf_counter() - start
        cpu_ms = _cpu_ms(proc.pid)
        time.sleep(idle_s)
        mem = _memory_kib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {
        "ready_ms": ready_s * 1000,
        "cpu_to_ready_ms": cpu_ms,
        "rss_mib": mem["VmRSS"] / 1024,
        "peak_rss_mib": mem["VmHWM"] / 1024,
    }


def _summary(runs: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in ("ready_ms", "cpu_to_ready_ms", "rss_mib", "peak_rss_mib"):
        values = [r[key] for r in runs]
        out[f"{key}_min"] = round(min(values), 1)
        out[f"{key}_median"] = round(percentile(values, 50), 1)
    return out


def run_startup_bench(runs: int = 5, idle_s: float = 2.0, quick: bool = False) -> dict[str, Any]:
    if quick:
        runs, idle_s = 1, 0.2
    cmd = [sys.executable, "-m", "orbitmq.cli", "standalone", *_FREE_PORTS, "--log-level", "WARNING"]
    ready = "orbitmq standalone ready on"
    standalone: list[dict[str, float]] = []
    bare: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="orbitmq-startup-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        first = _one_run([*cmd, "--data-dir", os.path.join(tmp, "first")], ready, 0.0, env)  # compiles
        for i in range(runs):  # alternate, so both see the same machine load
            bare.append(_one_run(_BARE, "bare ready", idle_s, env))
            standalone.append(_one_run([*cmd, "--data-dir", os.path.join(tmp, f"d{i}")], ready, idle_s, env))
    s, b = _summary(standalone), _summary(bare)
    return {
        "workload": "startup",
        "machine": machine(),
        "params": {"runs": runs, "idle_s": idle_s, "uvloop": _has_uvloop()},
        "standalone": s,
        "standalone_first_run_compiling_ms": round(first["ready_ms"], 1),
        "baseline_bare_python": b,
        "ratios": {
            "ready_vs_bare_python": round(s["ready_ms_median"] / b["ready_ms_median"], 1),
            "rss_vs_bare_python": round(s["rss_mib_median"] / b["rss_mib_median"], 1),
        },
        "runs": {"standalone": standalone, "baseline_bare_python": bare},
    }


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True
