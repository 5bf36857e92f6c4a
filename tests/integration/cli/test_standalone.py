"""The command-line contract: ready lines, clean stop on SIGTERM/SIGINT, configuration errors that name the key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

CMD = [sys.executable, "-m", "orbitmq.cli"]
#: Free ports for every server standalone runs (its gRPC proxy and metrics endpoint included).
FREE = ["--namesrv-port", "0", "--broker-port", "0", "--proxy-port", "0", "--metrics-port", "0"]


def start(args: list[str]) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen([*CMD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.startswith(f"orbitmq {args[0]} ready on"):
            return proc, lines
    proc.kill()
    raise AssertionError(f"no ready line; got {lines}; stderr: {proc.stderr.read() if proc.stderr else ''}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_standalone_prints_ready_and_stops_cleanly(tmp_path, sig) -> None:
    data = tmp_path / "data"
    proc, lines = start(["standalone", "--data-dir", str(data), *FREE])
    ready = lines[-1]
    host, port = ready.rsplit(" ", 1)[1].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    assert any(line.startswith("orbitmq broker ready on 127.0.0.1:") for line in lines), lines
    assert f"orbitmq namesrv ready on 127.0.0.1:{port}" in lines  # clients are given the NameServer
    assert any(line.startswith("orbitmq proxy ready on 127.0.0.1:") for line in lines), lines  # gRPC clients
    assert (data / "abort").exists()  # running: an unclean stop would be detected
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 0
    assert not (data / "abort").exists()  # clean stop: flushed and checkpointed
    assert (data / "checkpoint").stat().st_size > 0


def test_unknown_configuration_key_is_an_error_naming_it(tmp_path) -> None:
    conf = tmp_path / "broker.conf"
    conf.write_text("# a RocketMQ broker.conf\nflushDiskType=SYNC_FLUSH\nflushDiskTyp=ASYNC_FLUSH\n")
    proc = subprocess.run(
        [*CMD, "standalone", "--data-dir", str(tmp_path / "d"), *FREE, "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "flushDiskTyp" in proc.stderr
    assert not os.path.exists(tmp_path / "d" / "abort")


def test_bad_value_is_an_error_naming_the_key(tmp_path) -> None:
    proc = subprocess.run(
        [*CMD, "standalone", "--data-dir", str(tmp_path / "d"), *FREE, "--set", "maxMessageSize=lots"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "maxMessageSize" in proc.stderr


def test_namesrv_and_broker_run_as_separate_processes(tmp_path) -> None:
    ns, lines = start(["namesrv", "--port", "0"])
    try:
        addr = lines[-1].rsplit(" ", 1)[1]
        assert addr.startswith("127.0.0.1:")
        broker, blines = start(
            ["broker", "--namesrv", addr, "--port", "0", "--data-dir", str(tmp_path / "b")]
        )
        assert blines[-1].startswith("orbitmq broker ready on 127.0.0.1:")
        broker.terminate()
        assert broker.wait(timeout=30) == 0
        assert not (tmp_path / "b" / "abort").exists()
    finally:
        ns.terminate()
        assert ns.wait(timeout=30) == 0
