"""``orbitmq admin ... topic`` as a subprocess against an in-process cluster (real ports)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from tests.integration.admin.conftest import TwoBrokers

CMD = [sys.executable, "-m", "orbitmq.cli", "admin"]


async def run(*args: str) -> subprocess.CompletedProcess[str]:
    # The servers live on this test's event loop: the subprocess must not block it.
    proc = await asyncio.create_subprocess_exec(*CMD, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return subprocess.CompletedProcess(list(args), proc.returncode, out.decode(), err.decode())


async def test_cli_create_then_route_json(two_brokers: TwoBrokers) -> None:
    ns = two_brokers.namesrv.addr
    created = await run(
        "--namesrv", ns, "topic", "create", "CliT", "--queues", "4", "--type", "FIFO", "--json"
    )
    assert created.returncode == 0, created.stderr
    done = json.loads(created.stdout)
    assert sorted(b["brokerName"] for b in done["brokers"]) == ["broker-a", "broker-b"]
    assert {b["topicConfig"]["attributes"]["message.type"] for b in done["brokers"]} == {"FIFO"}

    route = await run("--namesrv", ns, "topic", "route", "CliT", "--json")
    assert route.returncode == 0, route.stderr
    qds = {q["brokerName"]: q["writeQueueNums"] for q in json.loads(route.stdout)["queueDatas"]}
    assert qds == {"broker-a": 4, "broker-b": 4}

    table = await run("--namesrv", ns, "topic", "route", "CliT")
    assert table.returncode == 0 and "broker-b" in table.stdout and "BROKER" in table.stdout


async def test_cli_exit_codes(two_brokers: TwoBrokers) -> None:
    ns = two_brokers.namesrv.addr
    missing = await run("--namesrv", ns, "topic", "route", "NoSuchT")
    assert missing.returncode == 1
    assert "TOPIC_NOT_EXIST" in missing.stderr and "NoSuchT" in missing.stderr
    usage = await run("--namesrv", ns, "topic", "create", "X", "--type", "WEIRD")
    assert usage.returncode == 2
    no_name = await run("--namesrv", ns, "topic", "delete")
    assert no_name.returncode == 2
