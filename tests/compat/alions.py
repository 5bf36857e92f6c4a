"""Run the real ali-ons 3.12.0 client (npm, pure JS) as separate Node processes from a test.

Each script in ``tests/compat/node`` takes one JSON object as its only argument and prints one JSON object
per line on stdout (``{"event": ...}``); see the header comment of each script for its configuration keys and
events. :class:`NodeProcess` starts a script, collects those events, lets a test await the one it needs and
always ends the process. Nothing here knows about OrbitMQ: the scripts talk to whatever ``nameSrv`` says.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import os
import shutil
import signal
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "ALIONS_VERSION",
    "NODE_DIR",
    "Event",
    "NodeProcess",
    "NodeProcessExited",
    "NodeProcesses",
    "check_node_environment",
    "start_consumer",
    "start_producer",
    "unique_instance_name",
]

#: The pinned ali-ons version (package.json / package-lock.json); the harness refuses any other.
ALIONS_VERSION = "3.12.0"
NODE_DIR = Path(__file__).resolve().parent / "node"

Event = dict[str, Any]
Predicate = Callable[[Event], bool]
_T = TypeVar("_T")

_STDERR_TAIL_LINES = 200
#: Longest stdout line accepted: a "msg" event carries the whole body (asyncio's default is 64 KiB).
_LINE_LIMIT = 64 * 1024 * 1024
_instance_counter = itertools.count(1)


class NodeProcessExited(AssertionError):
    """The process ended (or its stdout closed) before the awaited event arrived."""


def check_node_environment() -> str | None:
    """Why the compat tests cannot run here, or None when they can.

    A missing ``node`` binary is a reason to skip (returned as text); a missing or wrong ali-ons install is a
    broken checkout and raises, so it fails loudly instead of skipping.
    """
    if shutil.which("node") is None:
        return "`node` is not on PATH: the compat tests run the real ali-ons client under Node.js 20"
    manifest = NODE_DIR / "node_modules" / "ali-ons" / "package.json"
    if not manifest.is_file():
        raise RuntimeError(f"ali-ons is not installed in {NODE_DIR}: run `make node-deps` (npm ci there)")
    version = json.loads(manifest.read_text())["version"]
    if version != ALIONS_VERSION:
        raise RuntimeError(
            f"{manifest} is ali-ons {version}, the harness needs {ALIONS_VERSION}: run `npm ci`"
        )
    return None


def unique_instance_name(prefix: str = "compat") -> str:
    """An ali-ons ``instanceName`` that no other consumer of this test run uses (clientId = ip@instanceName)."""
    return f"{prefix}-{os.getpid()}-{next(_instance_counter)}"


def _matches(event: Event, name: str | None, fields: Mapping[str, Any]) -> bool:
    if name is not None and event.get("event") != name:
        return False
    return all(event.get(k) == v for k, v in fields.items())


class NodeProcess:
    """One Node script run as a child process, with its stdout events collected as they arrive."""

    def __init__(self, script: str, config: Mapping[str, Any], *, name: str | None = None) -> None:
        #: A file name in ``tests/compat/node`` (``producer.js``) or an absolute path.
        self.script = script
        self.config = dict(config)
        self.name = name or Path(script).stem
        #: Every event printed so far, in order. Lines that are not JSON objects appear as
        #: ``{"event": "_raw", "line": ...}`` (a script bug; stdout is reserved for events).
        self.events: list[Event] = []
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._changed = asyncio.Condition()
        self._eof = False

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> NodeProcess:
        script = NODE_DIR / self.script  # an absolute path stays as it is
        if not script.is_file():
            raise FileNotFoundError(script)
        self._proc = await asyncio.create_subprocess_exec(
            "node",
            str(script),
            json.dumps(self.config),
            cwd=NODE_DIR,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )
        self._readers = [
            asyncio.create_task(self._read_stdout(), name=f"{self.name}-stdout"),
            asyncio.create_task(self._read_stderr(), name=f"{self.name}-stderr"),
        ]
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def stderr(self) -> str:
        """The last lines the process wrote to stderr (ali-ons' own error printing ends up there)."""
        return "".join(self._stderr)

    async def wait_exit(self, timeout: float = 30.0) -> int:
        """Waits for the process to end by itself; returns its exit code."""
        assert self._proc is not None, "not started"
        try:
            async with asyncio.timeout(timeout):
                code = await self._proc.wait()
                await asyncio.gather(*self._readers)
        except TimeoutError:
            raise TimeoutError(f"{self.name} still running after {timeout} s\n{self.describe()}") from None
        return code

    async def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (the scripts then close their client gracefully), SIGKILL if it has not exited in time."""
        if self.running:
            assert self._proc is not None
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)
            try:
                return await self.wait_exit(timeout)
            except TimeoutError:
                pass
        return await self.kill()

    async def kill(self) -> int:
        """SIGKILL now (no UNREGISTER_CLIENT, sockets reset by the kernel); returns the exit code."""
        if self._proc is None:
            return 0
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        code = await self._proc.wait()
        await asyncio.gather(*self._readers, return_exceptions=True)
        return code

    # -- events -----------------------------------------------------------------------------------------
    def find(self, name: str | None = None, **fields: Any) -> list[Event]:
        """Events received so far with this ``event`` name and these exact field values."""
        return [e for e in self.events if _matches(e, name, fields)]

    async def wait_for(self, predicate: Predicate, timeout: float = 30.0, *, since: int = 0) -> Event:
        """The first event at index >= ``since`` (already received or still to come) that satisfies
        ``predicate``. Raises :class:`NodeProcessExited` if the process ends first, TimeoutError after
        ``timeout`` seconds; both messages carry the events and stderr seen so far."""
        found = await self._wait(lambda: self._first(predicate, since), timeout)
        assert found is not None
        return found

    async def wait_for_event(
        self, name: str, timeout: float = 30.0, *, since: int = 0, **fields: Any
    ) -> Event:
        """Shorthand: the first event called ``name`` whose given fields have exactly these values."""
        return await self.wait_for(lambda e: _matches(e, name, fields), timeout, since=since)

    async def wait_for_count(
        self, predicate: Predicate, count: int, timeout: float = 30.0, *, since: int = 0
    ) -> list[Event]:
        """The first ``count`` events at index >= ``since`` that satisfy ``predicate``."""

        def enough() -> list[Event] | None:
            hits = [e for e in self.events[since:] if predicate(e)]
            return hits[:count] if len(hits) >= count else None

        found = await self._wait(enough, timeout)
        assert found is not None
        return found

    def describe(self, last: int = 30) -> str:
        """Diagnostics for an assertion message: pid, exit code, the last events and stderr lines."""
        events = "\n".join(json.dumps(e) for e in self.events[-last:])
        return (
            f"--- {self.name} (pid {self.pid}, exit code {self.returncode}), "
            f"last {min(last, len(self.events))} of {len(self.events)} events:\n{events}\n"
            f"--- stderr tail:\n{self.stderr}"
        )

    def _first(self, predicate: Predicate, since: int) -> Event | None:
        return next((e for e in self.events[since:] if predicate(e)), None)

    async def _wait(self, probe: Callable[[], _T | None], timeout: float) -> _T:
        try:
            async with asyncio.timeout(timeout), self._changed:
                while (result := probe()) is None:
                    if self._eof:
                        # Let the exit code settle so the message shows it.
                        if self._proc is not None:
                            await self._proc.wait()
                        raise NodeProcessExited(
                            f"{self.name} ended before the awaited event\n{self.describe()}"
                        )
                    await self._changed.wait()
                return result
        except TimeoutError:
            raise TimeoutError(f"awaited event not seen within {timeout} s\n{self.describe()}") from None

    async def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            async for raw in self._proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    event = None
                if not isinstance(event, dict):
                    event = {"event": "_raw", "line": line}
                async with self._changed:
                    self.events.append(event)
                    self._changed.notify_all()
        finally:
            async with self._changed:
                self._eof = True
                self._changed.notify_all()

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        async for raw in self._proc.stderr:
            self._stderr.append(raw.decode("utf-8", "replace"))


def _drop_none(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if v is not None}


async def start_producer(
    name_srv: str | Iterable[str],
    topic: str,
    *,
    count: int = 1,
    producer_group: str = "PG_COMPAT",
    tags: str | list[str] | None = None,
    keys: str | list[str] | None = None,
    body: str = "msg-{i}",
    body_size: int | None = None,
    properties: Mapping[str, str] | None = None,
    delay_time_level: int | None = None,
    concurrency: int = 1,
    stop_on_error: bool = True,
    linger_ms: int | None = None,
    instance_name: str | None = None,
    options: Mapping[str, Any] | None = None,
    **extra: Any,
) -> NodeProcess:
    """Starts ``producer.js``: sends ``count`` messages, prints ``sent``/``send_error`` per message, then
    ``done`` and ``closed`` and exits 0. Patterns may contain ``{i}`` (the message index). ``extra`` keys
    go into the script's configuration as they are (e.g. ``deliverAfterMs``, ``shardingKey``)."""
    config = _drop_none(
        {
            "nameSrv": name_srv if isinstance(name_srv, str) else list(name_srv),
            "topic": topic,
            "producerGroup": producer_group,
            "count": count,
            "tags": tags,
            "keys": keys,
            "body": body,
            "bodySize": body_size,
            "properties": dict(properties) if properties else None,
            "delayTimeLevel": delay_time_level,
            "concurrency": concurrency,
            "stopOnError": stop_on_error,
            "lingerMs": linger_ms,
            "instanceName": instance_name,
            "options": dict(options) if options else None,
            **extra,
        }
    )
    return await NodeProcess("producer.js", config, name=f"producer[{topic}]").start()


async def start_consumer(
    name_srv: str | Iterable[str],
    consumer_group: str,
    topic: str | None = None,
    *,
    expression: str | Mapping[str, str] = "*",
    subscriptions: Iterable[tuple[str, str | Mapping[str, str]]] | None = None,
    instance_name: str | None = None,
    broadcast: bool = False,
    consume_from_where: str | None = None,
    consume_timestamp: str | None = None,
    fail: Mapping[str, Any] | None = None,
    handler_delay_ms: int | None = None,
    options: Mapping[str, Any] | None = None,
    **extra: Any,
) -> NodeProcess:
    """Starts ``consumer.js`` (runs until :meth:`NodeProcess.stop`). ``instance_name`` defaults to a fresh
    unique one, so two consumers of a group never share an ali-ons clientId. ``fail`` is the script's fail
    rule, e.g. ``{"bodyMatches": "^msg-3$", "times": 1}``; ``options`` go to the ali-ons Consumer as they
    are (``rebalanceInterval``, ``persistConsumerOffsetInterval``, ...)."""
    if topic is None and not subscriptions:
        raise ValueError("give a topic or subscriptions")
    name = instance_name or unique_instance_name("consumer")
    config = _drop_none(
        {
            "nameSrv": name_srv if isinstance(name_srv, str) else list(name_srv),
            "consumerGroup": consumer_group,
            "topic": topic,
            "expression": expression,
            "subscriptions": [{"topic": t, "expression": e} for t, e in subscriptions]
            if subscriptions
            else None,
            "instanceName": name,
            "isBroadcast": broadcast,
            "consumeFromWhere": consume_from_where,
            "consumeTimestamp": consume_timestamp,
            "fail": dict(fail) if fail else None,
            "handlerDelayMs": handler_delay_ms,
            "options": dict(options) if options else None,
            **extra,
        }
    )
    return await NodeProcess("consumer.js", config, name=f"consumer[{consumer_group}/{name}]").start()


class NodeProcesses:
    """Tracks the processes a test starts so that teardown always ends them (the ``alions`` fixture)."""

    def __init__(self) -> None:
        self.processes: list[NodeProcess] = []

    def track(self, proc: NodeProcess) -> NodeProcess:
        self.processes.append(proc)
        return proc

    async def start(self, script: str, config: Mapping[str, Any], *, name: str | None = None) -> NodeProcess:
        return self.track(await NodeProcess(script, config, name=name).start())

    async def start_producer(self, name_srv: str | Iterable[str], topic: str, **kwargs: Any) -> NodeProcess:
        return self.track(await start_producer(name_srv, topic, **kwargs))

    async def start_consumer(
        self, name_srv: str | Iterable[str], consumer_group: str, topic: str | None = None, **kwargs: Any
    ) -> NodeProcess:
        return self.track(await start_consumer(name_srv, consumer_group, topic, **kwargs))

    async def aclose(self) -> None:
        """Kills whatever is still running (a test that wants a graceful close calls ``stop()`` itself)."""
        await asyncio.gather(*(p.kill() for p in self.processes), return_exceptions=True)
