"""``orbitmq admin ... topic`` as a subprocess against an in-process cluster (real ports)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from orbitmq.cli.admin import execute
from orbitmq.cli.main import build_parser
from tests.integration.admin.conftest import TwoBrokers

pytestmark = pytest.mark.slow  # each command is a Python process (seconds on a loaded machine)

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


async def test_cli_offset_commands_exit_codes(two_brokers: TwoBrokers, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ns = two_brokers.namesrv.addr
    with pytest.raises(SystemExit) as usage:  # both positions: argparse's usage error
        build_parser().parse_args(["admin", "--namesrv", ns, "offset", "reset", "--group", "G", "--topic", "T",
                                   "--offset", "1", "--timestamp", "0"])  # fmt: skip
    assert usage.value.code == 2
    no_ns = build_parser().parse_args(["admin", "offset", "show", "--group", "G"])
    no_ns.namesrv = None  # as when NAMESRV_ADDR is not set either
    assert (await execute(no_ns))[0] == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    refused = await run("--namesrv", ns, "offset", "import", str(bad))
    assert refused.returncode == 1 and "not an offset export" in refused.stderr
    doc = {"format": "orbitmq-offsets", "version": 1, "exportedAt": 0, "source": "x",
           "offsets": [{"group": "G", "topic": "NoSuchTopic", "brokerName": "broker-a", "queueId": 0, "offset": 3}]}  # fmt: skip
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(doc))
    skipped = await run("--namesrv", ns, "offset", "import", str(partial), "--json")
    assert skipped.returncode == 1, skipped.stderr
    (change,) = json.loads(skipped.stdout)["changes"]
    assert change["skipped"] and "does not exist" in change["how"]
