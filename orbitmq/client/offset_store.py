"""Where a consumer keeps its progress (RocketMQ's ``OffsetStore``): on the brokers for CLUSTERING, in a
local file for BROADCASTING (every member of a broadcasting group reads every message, so the progress is
the member's own, not the group's).

Offsets are "next offset to consume". Both stores keep a table in memory that the consumer updates as
messages finish; ``persist``/``persist_all`` write it out (the consumer calls ``persist_all`` every 5 s and
on shutdown, and ``persist`` when it gives a queue away).

The local file is JSON, ``{"offsetTable": [{"topic", "brokerName", "queueId", "offset"}, ...]}``, written
to a temporary file, fsynced and renamed over the old one, which is kept as ``offsets.json.bak``; loading
falls back to the ``.bak`` when the file is missing or damaged (upstream's ``LocalFileOffsetStore`` layout
idea, not its fastjson encoding).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from orbitmq.client.instance import ClientInstance
from orbitmq.client.model import MessageQueue
from orbitmq.core.errors import BrokerError, ClientError, OrbitError
from orbitmq.core.fileio import atomic_write
from orbitmq.protocol.codes import RequestCode, ResponseCode

__all__ = ["LocalFileOffsetStore", "OffsetStore", "RemoteBrokerOffsetStore", "local_offsets_path"]

log = logging.getLogger("orbitmq.client")


class OffsetStore:
    """The in-memory table both stores share; subclasses say where it is read from and written to."""

    def __init__(self) -> None:
        self.table: dict[MessageQueue, int] = {}

    def read(self, mq: MessageQueue) -> int | None:
        """The offset held in memory for ``mq`` (None when there is none)."""
        return self.table.get(mq)

    def update(self, mq: MessageQueue, offset: int, *, increase_only: bool = False) -> None:
        if increase_only and offset < self.table.get(mq, -1):
            return
        self.table[mq] = offset

    def remove(self, mq: MessageQueue) -> None:
        self.table.pop(mq, None)

    async def load(self) -> None:
        """Read what is stored up front (the local file); the broker store reads per queue instead."""

    async def fetch(self, mq: MessageQueue) -> int | None:
        """The stored offset of ``mq``, read from where it is kept (None = never stored)."""
        raise NotImplementedError

    async def persist(self, mq: MessageQueue) -> None:
        raise NotImplementedError

    async def persist_all(self, mqs: Iterable[MessageQueue]) -> None:
        raise NotImplementedError


class RemoteBrokerOffsetStore(OffsetStore):
    """CLUSTERING: the group's offsets on the broker that holds each queue (QUERY/UPDATE_CONSUMER_OFFSET)."""

    def __init__(self, instance: ClientInstance, group: str) -> None:
        super().__init__()
        self.instance, self.group = instance, group

    async def fetch(self, mq: MessageQueue) -> int | None:
        q = {"consumerGroup": self.group, "topic": mq.topic, "queueId": mq.queue_id}
        resp = await self.instance.request(
            await self._addr(mq), RequestCode.QUERY_CONSUMER_OFFSET, q, ok=(0, ResponseCode.QUERY_NOT_FOUND)
        )
        if resp.code == 0 and (stored := int(resp.ext_fields.get("offset", -1))) >= 0:
            self.table[mq] = stored
            return stored
        return None

    async def persist(self, mq: MessageQueue) -> None:
        offset = self.table.get(mq)
        if offset is None:
            return
        fields = {
            "consumerGroup": self.group,
            "topic": mq.topic,
            "queueId": mq.queue_id,
            "commitOffset": offset,
        }
        await self.instance.request(await self._addr(mq), RequestCode.UPDATE_CONSUMER_OFFSET, fields)

    async def persist_all(self, mqs: Iterable[MessageQueue]) -> None:
        for mq in list(mqs):
            try:
                await self.persist(mq)
            except OrbitError as exc:
                log.info("%s: persisting the offset of %s failed: %s", self.group, mq, exc)

    async def _addr(self, mq: MessageQueue) -> str:
        try:
            return self.instance.broker_addr(mq.broker_name)
        except ClientError:
            with contextlib.suppress(BrokerError):
                await self.instance.route(mq.topic, refresh=True)
            return self.instance.broker_addr(mq.broker_name)


def local_offsets_path(directory: str | os.PathLike[str], group: str, instance_name: str | None) -> Path:
    """``<directory>/<instance name or DEFAULT>/<group>/offsets.json``: one file per member and group, so
    several broadcasting members on one machine can share ``directory`` if they set instance names."""
    return Path(directory) / (instance_name or "DEFAULT") / group / "offsets.json"


class LocalFileOffsetStore(OffsetStore):
    """BROADCASTING: this member's offsets in a JSON file (see the module docstring for the format)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        self._write_lock = asyncio.Lock()
        #: How many times the file was written (a plain counter for metrics and tests).
        self.writes = 0

    async def load(self) -> None:
        for candidate in (self.path, self.path.with_name(self.path.name + ".bak")):
            try:
                self.table = _decode(candidate.read_bytes())
                return
            except FileNotFoundError:
                continue
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("local offset file %s is damaged (%s); trying its backup", candidate, exc)
        self.table = {}

    async def fetch(self, mq: MessageQueue) -> int | None:
        return self.table.get(mq)

    async def persist(self, mq: MessageQueue) -> None:
        await self._persist()

    async def persist_all(self, mqs: Iterable[MessageQueue]) -> None:
        await self._persist()

    async def _persist(self) -> None:
        """Encode on the loop (the table changes there), write and fsync in a worker thread so the consumer's
        loop is not stalled by the disk; one write at a time, in call order, so the newest table wins."""
        data = _encode(self.table)
        async with self._write_lock:
            await asyncio.to_thread(self._write, data)

    def _write(self, data: bytes) -> None:
        try:
            # 0o666 (before the umask) and no directory fsync: what this file always had; the broker's
            # config files fsync their directory too (orbitmq.store.fileops.atomic_write).
            atomic_write(self.path, data, mode=0o666)
            self.writes += 1
        except OSError as exc:
            raise ClientError(f"cannot write the local offset file {self.path}: {exc}") from exc


def _encode(table: dict[MessageQueue, int]) -> bytes:
    rows = [{**mq.to_json(), "offset": off} for mq, off in sorted(table.items())]
    return json.dumps({"offsetTable": rows}, indent=1).encode()


def _decode(data: bytes) -> dict[MessageQueue, int]:
    rows = json.loads(data)["offsetTable"]
    return {MessageQueue.from_json(r): int(r["offset"]) for r in rows}
