"""JSON config files of the broker (topics, subscription groups, consumer offsets), RocketMQ's way.

Each file is written with :func:`orbitmq.store.fileops.atomic_write` (temp file, fsync, previous content
kept as ``.bak``) and read back with :func:`load_json_file`, which falls back to the ``.bak`` copy when the
main file is missing, empty or does not parse (RocketMQ's ``ConfigManager.load``/``loadBak``).

Threading: managers mutate their tables on the event-loop thread and :meth:`JsonConfigManager.persist`
may run in a worker thread, so every mutation and every encode holds the manager's lock. ``persist()``
blocks (fsync): from async code call ``await manager.persist_async()`` (or ``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from orbitmq.core.clock import Clock
from orbitmq.core.errors import ProtocolError, StoreError
from orbitmq.core.service import Service
from orbitmq.protocol import fastjson
from orbitmq.store.fileops import FileOps, atomic_write, read_with_backup

__all__ = [
    "DataVersion",
    "JsonConfigManager",
    "PersistService",
    "Persistable",
    "dump_json",
    "load_json_file",
]

log = logging.getLogger("orbitmq.broker.persist")


@dataclass(frozen=True, slots=True)
class DataVersion:
    """RocketMQ ``DataVersion``: the NameServer and slaves compare it to see whether a table changed."""

    state_version: int = 0  # stateVersion
    timestamp: int = 0  # timestamp (ms)
    counter: int = 0  # counter

    def next(self, now_ms: int, state_version: int = 0) -> DataVersion:
        return DataVersion(state_version=state_version, timestamp=now_ms, counter=self.counter + 1)

    def to_json(self) -> dict[str, int]:
        return {"counter": self.counter, "stateVersion": self.state_version, "timestamp": self.timestamp}

    @classmethod
    def from_json(cls, obj: object) -> DataVersion:
        if not isinstance(obj, dict):
            return cls()
        return cls(
            state_version=_as_int(obj.get("stateVersion", 0)),
            timestamp=_as_int(obj.get("timestamp", 0)),
            counter=_as_int(obj.get("counter", 0)),
        )


def _as_int(v: object) -> int:
    # fastjson writes AtomicLong as a number; a hand-edited file may carry a numeric string.
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise ValueError(f"not an integer: {v!r}")
    return int(v)


def dump_json(obj: Any) -> bytes:
    """Pretty JSON, as RocketMQ writes its config files (they are meant to be read by people)."""
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2)


def _parse_object(data: bytes | None, path: str) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        # A Java broker's file has fastjson's unquoted integer keys ({0:5}): the tolerant parser takes
        # them, so a RocketMQ store directory carries over.
        obj = fastjson.loads(data)
    except ProtocolError as exc:
        log.warning("config file %s does not parse (%s)", path, exc)
        return None
    if not isinstance(obj, dict):
        log.warning("config file %s holds a JSON %s, not an object", path, type(obj).__name__)
        return None
    return obj


def load_json_file(path: str) -> dict[str, Any] | None:
    """The JSON object stored at ``path``; ``path.bak`` when the main file is missing, empty or corrupt.

    None when neither file exists. :class:`StoreError` when a file exists but no copy parses: starting
    with an empty table would silently lose topics or offsets, so the operator must look.
    """
    data = read_with_backup(path)
    obj = _parse_object(data, path)
    if obj is not None:
        return obj
    if data is None:
        return None
    backup = read_with_backup(path + ".bak")
    obj = _parse_object(backup, path + ".bak")
    if obj is None:
        raise StoreError(f"config file {path} is corrupt and has no usable .bak copy")
    log.warning("config file %s is corrupt: loaded its backup %s.bak", path, path)
    return obj


class Persistable(Protocol):
    name: str

    @property
    def dirty(self) -> bool: ...

    async def persist_async(self) -> None: ...


class JsonConfigManager:
    """Base of a manager whose state is one JSON config file.

    Subclasses implement :meth:`encode_obj` (state → JSON object, called under the lock) and
    :meth:`decode_obj` (JSON object → state). Mutators wrap their changes in ``with self._lock:`` and call
    :meth:`_mark_changed`, so a :class:`PersistService` writes only files that changed.
    """

    name = "config"

    def __init__(self, path: str, clock: Clock, file_ops: FileOps | None = None) -> None:
        self.path = path
        self.clock = clock
        self._file_ops = file_ops
        self._lock = threading.RLock()
        # Writes of one file are serialised, and a snapshot older than the one on disk is dropped: two
        # persists in flight (the periodic service and a handler's immediate persist) used to share the
        # same temp file, and the slower one could either fail its rename or put older content back.
        self._write_lock = threading.Lock()
        self._written_changes = -1
        self._changes = 0
        self._persisted_changes = 0

    # -- subclass hooks ------------------------------------------------------------------------------
    def encode_obj(self) -> dict[str, Any]:
        raise NotImplementedError

    def decode_obj(self, obj: dict[str, Any]) -> None:
        raise NotImplementedError

    # -- load / persist ------------------------------------------------------------------------------
    def load(self) -> bool:
        """Read the file (or its backup) into memory; False when there is none (a fresh broker).

        Raises :class:`StoreError` when the file and its backup are both unreadable.
        """
        obj = load_json_file(self.path)
        if obj is None:
            return False
        try:
            with self._lock:
                self.decode_obj(obj)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreError(f"config file {self.path} has an unexpected shape: {exc}") from exc
        return True

    def _snapshot(self) -> tuple[bytes, int]:
        with self._lock:
            return dump_json(self.encode_obj()), self._changes

    def _write(self, data: bytes, changes: int) -> None:
        with self._write_lock:
            if changes < self._written_changes:
                return
            atomic_write(self.path, data, self._file_ops)
            self._written_changes = changes

    def persist(self) -> None:
        """Write the file now. Blocking (fsync): run it in a worker thread, or use :meth:`persist_async`."""
        data, changes = self._snapshot()
        self._write(data, changes)
        self._persisted_changes = max(self._persisted_changes, changes)

    async def persist_async(self) -> None:
        """Encode on the loop thread, write in a worker thread."""
        data, changes = self._snapshot()
        await asyncio.to_thread(self._write, data, changes)
        self._persisted_changes = max(self._persisted_changes, changes)

    @property
    def dirty(self) -> bool:
        """True when something changed since the last successful persist."""
        return self._changes != self._persisted_changes

    def _mark_changed(self) -> None:
        self._changes += 1


class PersistService(Service):
    """Writes changed config files every ``interval_ms``, on :meth:`wakeup`, and once more on stop.

    A failed periodic write is logged and retried next round (the file keeps its previous content); a
    failure of the final write on stop propagates so shutdown reports it.
    """

    def __init__(self, name: str, managers: Sequence[Persistable], clock: Clock, interval_ms: int) -> None:
        super().__init__(name)
        if interval_ms <= 0:
            raise ValueError(f"{name}: interval_ms must be positive, got {interval_ms}")
        self.managers = list(managers)
        self.clock = clock
        self.interval_ms = interval_ms

    async def run(self) -> None:
        while not self.stopping:
            await self._wait(self.interval_ms / 1000)
            if self.stopping:
                return
            for manager in self.managers:
                if not manager.dirty:
                    continue
                try:
                    await manager.persist_async()
                except Exception:
                    log.exception("%s: persisting %s failed; will retry", self.name, manager.name)

    async def on_stop(self) -> None:
        errors: list[BaseException] = []
        for manager in self.managers:
            if manager.dirty:
                try:
                    await manager.persist_async()
                except Exception as exc:
                    log.exception("%s: final persist of %s failed", self.name, manager.name)
                    errors.append(exc)
        if errors:
            raise StoreError(f"{self.name}: final persist failed: {errors[0]}") from errors[0]

    async def _wait(self, seconds: float) -> None:
        """Sleep on the injected clock, cut short by :meth:`wakeup` (the base class sleeps on real time)."""
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        woken = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, woken):
                task.cancel()
            await asyncio.gather(sleeper, woken, return_exceptions=True)
        self._wakeup.clear()
