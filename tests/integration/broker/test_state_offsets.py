"""consumerOffset.json on real files: schema, reload, backup fallback, the persist service."""

from __future__ import annotations

import asyncio
import json
import os

import orjson
import pytest

from orbitmq.broker.offsets import ConsumerOffsetManager, OffsetPersistService
from orbitmq.core.clock import FakeClock
from orbitmq.core.errors import StoreError
from orbitmq.testing.faults import FaultyFileOps


def offsets_path(root: str) -> str:
    return os.path.join(root, "config", "consumerOffset.json")


def test_file_is_in_rocketmq_schema(tmp_path) -> None:
    m = ConsumerOffsetManager(str(tmp_path), FakeClock())
    m.commit_offset("g", "t", 0, 5)
    m.commit_offset("g", "t", 3, 8)
    m.persist()
    with open(offsets_path(str(tmp_path)), "rb") as f:
        obj = json.load(f)
    assert set(obj) == {"offsetTable", "dataVersion"}
    assert obj["offsetTable"] == {"t@g": {"0": 5, "3": 8}}
    assert set(obj["dataVersion"]) == {"counter", "stateVersion", "timestamp"}
    assert not m.dirty


def test_persist_then_reload_gives_the_same_state(tmp_path) -> None:
    clock = FakeClock()
    m = ConsumerOffsetManager(str(tmp_path), clock, version_step=1)
    for q in range(4):
        m.commit_offset("g1", "t", q, q * 10)
    m.commit_offset("g2", "%RETRY%g2", 0, 1)
    m.persist()
    again = ConsumerOffsetManager(str(tmp_path), clock)
    assert again.load()
    assert again.table() == m.table()
    assert again.data_version == m.data_version
    assert not again.dirty


def test_fresh_directory_loads_nothing(tmp_path) -> None:
    m = ConsumerOffsetManager(str(tmp_path), FakeClock())
    assert not m.load()
    assert m.table() == {}


def test_corrupt_main_file_falls_back_to_backup(tmp_path, caplog) -> None:
    m = ConsumerOffsetManager(str(tmp_path), FakeClock())
    m.commit_offset("g", "t", 0, 5)
    m.persist()
    m.commit_offset("g", "t", 0, 6)
    m.persist()  # the first file is now consumerOffset.json.bak
    with open(offsets_path(str(tmp_path)), "wb") as f:
        f.write(b'{"offsetTable": {"t@g": {"0": 6')  # torn write
    again = ConsumerOffsetManager(str(tmp_path), FakeClock())
    assert again.load()
    assert again.query_offset("g", "t", 0) == 5
    assert "corrupt" in caplog.text


def test_corrupt_file_without_backup_is_an_error(tmp_path) -> None:
    path = offsets_path(str(tmp_path))
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(b"not json")
    with pytest.raises(StoreError, match="corrupt"):
        ConsumerOffsetManager(str(tmp_path), FakeClock()).load()


def test_wrong_shape_is_an_error(tmp_path) -> None:
    path = offsets_path(str(tmp_path))
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(b'{"offsetTable": {"t@g": {"0": "five"}}}')
    with pytest.raises(StoreError, match="unexpected shape"):
        ConsumerOffsetManager(str(tmp_path), FakeClock()).load()


def test_java_broker_file_with_unquoted_keys_loads(tmp_path) -> None:
    path = offsets_path(str(tmp_path))
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(
            b'{\n\t"dataVersion":{"counter":3,"stateVersion":0,"timestamp":1700000000000},\n'
            b'\t"offsetTable":{"TopicTest@G":{0:250,1:249,2:-1},"%RETRY%G@G":{0:0}}\n}'
        )
    m = ConsumerOffsetManager(str(tmp_path), FakeClock())
    assert m.load()
    assert m.query_offsets("G", "TopicTest") == {0: 250, 1: 249}, "-1 reads as no offset"
    assert m.query_offset("G", "%RETRY%G", 0) == 0
    assert m.data_version.counter == 3


async def test_persist_async_writes_in_a_thread(tmp_path) -> None:
    m = ConsumerOffsetManager(str(tmp_path), FakeClock())
    m.commit_offset("g", "t", 0, 1)
    await m.persist_async()
    with open(offsets_path(str(tmp_path)), "rb") as f:
        assert orjson.loads(f.read())["offsetTable"] == {"t@g": {"0": 1}}


async def service_sleeping(clock: FakeClock) -> None:
    """Yield until the service's loop sleeps on the fake clock, so advancing it is not lost."""
    for _ in range(1000):
        if clock.sleepers:
            return
        await asyncio.sleep(0)
    raise AssertionError("the service never went to sleep")


class _Recording(ConsumerOffsetManager):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.writes = 0
        self.attempts = 0
        self.written = asyncio.Event()
        self.attempted = asyncio.Event()

    async def persist_async(self) -> None:
        try:
            await super().persist_async()
            self.writes += 1
            self.written.set()
        finally:
            self.attempts += 1
            self.attempted.set()


async def test_persist_service_writes_changes_every_interval_and_on_stop(tmp_path) -> None:
    clock = FakeClock()
    m = _Recording(str(tmp_path), clock)
    service = OffsetPersistService(m, clock, interval_ms=5000)
    await service.start()
    try:
        await service_sleeping(clock)
        await clock.advance(5)
        await service_sleeping(clock)
        assert m.writes == 0 and m.attempts == 0, "nothing changed, nothing written"
        m.commit_offset("g", "t", 0, 7)
        await clock.advance(4.9)
        assert m.attempts == 0
        await clock.advance(0.2)
        await asyncio.wait_for(m.written.wait(), 10)
        assert m.writes == 1 and not m.dirty
        m.commit_offset("g", "t", 0, 8)
    finally:
        await service.stop()
    assert m.writes == 2, "stop flushes what changed since the last round"
    again = ConsumerOffsetManager(str(tmp_path), clock)
    again.load()
    assert again.query_offset("g", "t", 0) == 8


async def test_persist_service_survives_a_failing_disk(tmp_path) -> None:
    clock = FakeClock()
    ops = FaultyFileOps()
    m = _Recording(str(tmp_path), clock, file_ops=ops)
    service = OffsetPersistService(m, clock, interval_ms=1000)
    await service.start()
    await service_sleeping(clock)
    ops.fail_next_fsyncs(1)
    m.commit_offset("g", "t", 0, 7)
    await clock.advance(1.1)
    await asyncio.wait_for(m.attempted.wait(), 10)
    assert m.writes == 0 and m.dirty, "the failed write leaves the change pending"
    assert service.running, "a failed round does not kill the service"
    m.attempted.clear()
    await service_sleeping(clock)
    await clock.advance(1.0)
    await asyncio.wait_for(m.attempted.wait(), 10)
    assert m.writes == 1 and not m.dirty
    await service.stop()


async def test_failed_final_persist_is_reported(tmp_path) -> None:
    clock = FakeClock()
    ops = FaultyFileOps()
    m = ConsumerOffsetManager(str(tmp_path), clock, file_ops=ops)
    service = OffsetPersistService(m, clock, interval_ms=1000)
    await service.start()
    m.commit_offset("g", "t", 0, 7)
    ops.fail_next_fsyncs(1)
    with pytest.raises(StoreError, match="final persist"):
        await service.stop()
    assert m.dirty
