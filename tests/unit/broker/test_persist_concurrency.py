"""Concurrent persists of one config file: serialised, and never older content over newer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from orbitmq.broker.persist import JsonConfigManager, load_json_file
from orbitmq.core.clock import FakeClock


class Counter(JsonConfigManager):
    def __init__(self, path: str) -> None:
        super().__init__(path, FakeClock())
        self.value = 0

    def encode_obj(self) -> dict[str, Any]:
        return {"value": self.value}

    def decode_obj(self, obj: dict[str, Any]) -> None:
        self.value = obj["value"]

    def bump(self) -> None:
        self.value += 1
        self._mark_changed()


async def test_many_persists_in_flight_leave_the_newest_content(tmp_path: Path) -> None:
    path = tmp_path / "config" / "counter.json"
    mgr = Counter(str(path))
    tasks = []
    for _ in range(40):
        mgr.bump()
        tasks.append(asyncio.ensure_future(mgr.persist_async()))
    await asyncio.gather(*tasks)
    assert load_json_file(str(path)) == {"value": 40}
    assert not mgr.dirty
    assert not (tmp_path / "config" / "counter.json.tmp").exists()


def test_an_older_snapshot_is_not_written_over_a_newer_one(tmp_path: Path) -> None:
    path = tmp_path / "counter.json"
    mgr = Counter(str(path))
    mgr.bump()
    old, old_changes = mgr._snapshot()
    mgr.bump()
    mgr.persist()
    mgr._write(old, old_changes)  # the slower of two writers arrives last
    assert json.loads(path.read_bytes()) == {"value": 2}
