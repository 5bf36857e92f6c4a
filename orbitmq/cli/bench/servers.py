"""Start ``orbitmq standalone`` as a separate process for a benchmark, on free ports in a temp dir."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = ["Standalone", "standalone_process"]


@dataclass
class Standalone:
    namesrv: str
    broker: str
    data_dir: str


@contextlib.asynccontextmanager
async def standalone_process(flush: str, *extra: str) -> AsyncIterator[Standalone]:
    """A standalone server in its own process, so the benchmark client and the server each get a core."""
    with tempfile.TemporaryDirectory(prefix="orbitmq-bench-") as data:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "orbitmq.cli", "standalone", "--data-dir", data, "--namesrv-port", "0",
            "--broker-port", "0", "--metrics-port", "0", "--proxy-port", "0", "--flush-disk-type", flush,
            "--log-level", "WARNING",
            *extra,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        addrs: dict[str, str] = {}
        try:
            while "standalone" not in addrs:
                line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
                if not line:
                    raise RuntimeError("orbitmq standalone exited before it was ready")
                words = line.split()
                if len(words) == 5 and words[2:4] == ["ready", "on"]:
                    addrs[words[1]] = words[4]
            yield Standalone(addrs["namesrv"], addrs["broker"], data)
        finally:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
