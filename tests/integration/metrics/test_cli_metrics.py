"""``--metrics-port`` on the server commands: the ready line, and a scrape of a process that serves."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CMD = [sys.executable, "-m", "orbitmq.cli"]


def _start(args: list[str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Run a server command until its own ready line; the addresses of every ready line it printed."""
    proc = subprocess.Popen([*CMD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and args[0] not in ready:
        words = proc.stdout.readline().split()
        if not words:
            break
        if words[2:4] == ["ready", "on"]:
            ready[words[1]] = words[4]
    if args[0] not in ready:
        proc.kill()
        raise AssertionError(f"no ready line: {ready}; stderr: {proc.stderr.read() if proc.stderr else ''}")
    return proc, ready


def _scrape(addr: str) -> str:
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as resp:
        return resp.read().decode()


def test_namesrv_and_broker_serve_metrics_on_their_own_ports(tmp_path: Path) -> None:
    ns, ns_ready = _start(["namesrv", "--port", "0", "--metrics-port", "0"])
    try:
        assert ns_ready["metrics"] != ns_ready["namesrv"]
        broker, b_ready = _start(
            ["broker", "--namesrv", ns_ready["namesrv"], "--port", "0", "--data-dir", str(tmp_path),
             "--metrics-port", "0", "--set", "logFormat=json"]
        )  # fmt: skip
        try:
            text = _scrape(b_ready["metrics"])
            assert (
                'rocketmq_broker_permission{cluster="DefaultCluster",node_id="broker-a",node_type="broker"} 6.0'
                in text
            )
            assert "orbitmq_namesrv_brokers" not in text  # each process exports its own components
            assert 'orbitmq_namesrv_brokers{node_id="' in _scrape(ns_ready["metrics"])
        finally:
            broker.terminate()
            assert broker.wait(timeout=30) == 0
        assert broker.stderr is not None
        assert '"event": "broker_started"' in broker.stderr.read()  # logFormat=json: one JSON object a line
    finally:
        ns.terminate()
        assert ns.wait(timeout=30) == 0


def test_without_the_flag_a_namesrv_serves_no_metrics(tmp_path: Path) -> None:
    ns, ns_ready = _start(["namesrv", "--port", "0"])
    try:
        assert set(ns_ready) == {"namesrv"}
    finally:
        ns.terminate()
        assert ns.wait(timeout=30) == 0
