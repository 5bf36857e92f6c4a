"""Every ``orbitmq admin`` example in docs/admin.md runs as written, in order, against two in-process clusters
(the documented 127.0.0.1:9876 and 127.0.0.1:9886 become their real addresses; message ids printed by the
documented sends become the ids this run's sends print), with the documented exit code; and every verb of
the command has an example there."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orbitmq.broker import BrokerApp, BrokerConfig
from orbitmq.cli.admin import execute
from orbitmq.cli.main import build_parser
from orbitmq.namesrv import NamesrvApp, NamesrvConfig
from orbitmq.store import StoreConfig

DOC = Path(__file__).resolve().parents[3] / "docs" / "admin.md"
BLOCK = re.compile(r"```console\n\$ (orbitmq admin [^\n]*)\n(.*?)```", re.S)
EXITS = re.compile(r"\s+#\s*exits\s+(\d+)$")


def documented() -> list[tuple[str, int, str]]:
    """(command, expected exit code, documented output) of every example, in order."""
    out = []
    for command, output in BLOCK.findall(DOC.read_text(encoding="utf-8")):
        m = EXITS.search(command)
        out.append((EXITS.sub("", command), int(m.group(1)) if m else 0, output))
    return out


async def start_cluster(root: Path) -> tuple[NamesrvApp, BrokerApp]:
    namesrv = NamesrvApp(NamesrvConfig(port=0))
    await namesrv.start()
    store = StoreConfig(store_path_root_dir=str(root), mapped_file_size_commit_log=1024 * 1024,
                        mapped_file_size_consume_queue=6000)  # fmt: skip
    broker = BrokerApp(BrokerConfig(listen_port=0, namesrv_addr=(namesrv.addr,)), store)
    await broker.start()
    return namesrv, broker


@pytest.fixture
async def clusters(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    started = [await start_cluster(tmp_path / "a"), await start_cluster(tmp_path / "b")]
    try:
        yield {"127.0.0.1:9876": started[0][0].addr, "127.0.0.1:9886": started[1][0].addr}
    finally:
        for namesrv, broker in started:
            await broker.stop()
            await namesrv.stop()


def sent_ids(output: str) -> list[str]:
    """MSG-ID and OFFSET-MSG-ID of a ``message send`` table."""
    return output.splitlines()[1].split()[:2]


async def test_every_documented_example_runs_as_written(
    clusters: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # `offset export --output offsets.json` writes here
    examples = documented()
    assert len(examples) >= 30
    substitutions = dict(clusters)
    for command, expected, doc_output in examples:
        line = command
        for old, new in substitutions.items():
            line = line.replace(old, new)
        args = build_parser().parse_args(shlex.split(line)[1:])
        code, out, err = await execute(args)
        assert code == expected, f"{command}\n-> exit {code}\n{out}\n{err}"
        assert out or err, command
        if "--json" in command:
            json.loads(out)
        if " message send " in command:
            substitutions.update(zip(sent_ids(doc_output), sent_ids(out), strict=True))
    assert json.loads((tmp_path / "offsets.json").read_text())["format"] == "orbitmq-offsets"


def leaf_commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """``"topic create"``, ``"group mode set"``, ...: every runnable path under ``parser``."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [prefix.strip()]
    return [leaf for name, p in subs[0].choices.items() for leaf in leaf_commands(p, f"{prefix} {name}")]


def test_every_verb_has_an_example() -> None:
    commands = {c for c, _, _ in documented()}
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    verbs = leaf_commands(sub.choices["admin"])
    assert "group mode set" in verbs and "offset sync" in verbs
    assert [v for v in verbs if not any(f" {v} " in f"{c} " for c in commands)] == []
