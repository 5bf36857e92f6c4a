"""Run the official RocketMQ 5 clients and the OrbitMQ servers as separate processes, for the proxy tests.

Clients: :func:`python_client` runs ``py_client.py`` (rocketmq-python-client 5.1.2 from this virtualenv),
:func:`node_client` runs ``../node5/client.js`` (rocketmq-client-nodejs 1.0.8 pinned by its package-lock).
Both print one JSON event per line and take one JSON command per stdin line; :meth:`ClientProcess.call`
sends a command and returns its answer (raising on an ``error`` answer). One client per process.

Servers: :func:`standalone` runs ``orbitmq standalone`` (its proxy in local mode) and :func:`proxied_cluster`
a NameServer, two brokers and ``orbitmq proxy`` (cluster mode), each in its own process on free ports,
stopped with SIGTERM (they must exit 0). Both yield a :class:`ProxiedServers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orbitmq.net import RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import MessageRecord, decode_records
from tests.compat.alions import Event, NodeProcess
from tests.compat.servers import ServerProcess, _spawn, start_broker, start_namesrv

__all__ = [
    "NODE5_DIR",
    "NODE5_VERSION",
    "ClientProcess",
    "ClientRaised",
    "ProxiedServers",
    "check_node5_environment",
    "node_client",
    "proxied_cluster",
    "python_client",
    "standalone",
]

HERE = Path(__file__).resolve().parent
NODE5_DIR = HERE.parent / "node5"
NODE5_VERSION = "1.0.8"
_ROOT = HERE.parents[2]
_ids = itertools.count(1)
#: Test-friendly proxy keys: receives may ask for short polls and invisible times (upstream: 5 s and 10 s).
FAST_PROXY_PROPS = {
    "grpcClientConsumerMinLongPollingTimeoutMillis": "1000",
    "minInvisibleTimeMillsForRecv": "1000",
    "grpcShutdownTimeSeconds": "3",
}


def check_node5_environment() -> str | None:
    """Why the Node 5 client cannot run here (None: it can). A missing install is a broken checkout."""
    if shutil.which("node") is None:
        return "`node` is not on PATH"
    manifest = NODE5_DIR / "node_modules" / "rocketmq-client-nodejs" / "package.json"
    if not manifest.is_file():
        raise RuntimeError(f"rocketmq-client-nodejs is not installed in {NODE5_DIR}: run `make node-deps`")
    version = json.loads(manifest.read_text())["version"]
    if version != NODE5_VERSION:
        raise RuntimeError(f"{manifest} is {version}, the tests need {NODE5_VERSION}: run `npm ci` there")
    return None


class ClientRaised(AssertionError):
    """The client answered a command with an ``error`` event."""


class ClientProcess(NodeProcess):
    """An official client in its own process, commanded over stdin (see ``py_client.py``)."""

    def __init__(self, argv: list[str], config: dict[str, Any], name: str) -> None:
        super().__init__(argv[-1], config, name=name)
        self.argv = argv

    async def start(self) -> ClientProcess:
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv, json.dumps(self.config), cwd=_ROOT, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, limit=64 * 1024 * 1024,
        )  # fmt: skip
        self._readers = [
            asyncio.create_task(self._read_stdout(), name=f"{self.name}-stdout"),
            asyncio.create_task(self._read_stderr(), name=f"{self.name}-stderr"),
        ]
        await self.wait_for_event("started", timeout=60)
        return self

    async def call(self, cmd: str, timeout: float = 30.0, **fields: Any) -> Event:
        """Send a command and return its answer; ClientRaised if the client raised."""
        assert self._proc is not None and self._proc.stdin is not None
        ident = next(_ids)
        self._proc.stdin.write((json.dumps({"cmd": cmd, "id": ident, **fields}) + "\n").encode())
        await self._proc.stdin.drain()
        event = await self.wait_for(lambda e: e.get("id") == ident, timeout)
        if event["event"] == "error":
            raise ClientRaised(f"{self.name}: {cmd} raised {event['error']}\n{event.get('trace', '')}")
        return event

    async def shutdown(self, timeout: float = 60.0) -> int:
        """Graceful: the client's own shutdown(), then the process exits 0."""
        if self.running and self._proc is not None and self._proc.stdin is not None:
            self._proc.stdin.write(b'{"cmd": "shutdown"}\n')
            with contextlib.suppress(ConnectionError):
                await self._proc.stdin.drain()
            return await self.wait_exit(timeout)
        return await self.kill()


async def python_client(endpoints: str, role: str, **config: Any) -> ClientProcess:
    cfg = {"endpoints": endpoints, "role": role, **config}
    argv = [sys.executable, str(HERE / "py_client.py")]
    return await ClientProcess(argv, cfg, f"python-{role}").start()


async def node_client(endpoints: str, role: str, **config: Any) -> ClientProcess:
    cfg = {"endpoints": endpoints, "role": role, **config}
    return await ClientProcess(["node", str(NODE5_DIR / "client.js")], cfg, f"node-{role}").start()


@dataclass
class ProxiedServers:
    """Where clients connect (``proxy``) and what runs behind it."""

    proxy: str
    processes: list[ServerProcess]
    brokers: list[str]  # remoting addresses
    mode: str
    clients: list[ClientProcess] = field(default_factory=list)

    async def client(self, language: str, role: str, **config: Any) -> ClientProcess:
        start = python_client if language == "python" else node_client
        proc = await start(self.proxy, role, **config)
        self.clients.append(proc)
        return proc

    async def admin(self, code: int, body: bytes = b"", **fields: object) -> None:
        """One admin request to every broker (topic and group creation)."""
        client = RemotingClient()
        try:
            ext = {
                k: ("true" if v else "false") if isinstance(v, bool) else str(v) for k, v in fields.items()
            }
            for addr in self.brokers:
                resp = await client.invoke(addr, RemotingCommand.request(code, ext, body), 10.0)
                assert resp.code == ResponseCode.SUCCESS, resp.remark
        finally:
            await client.close()

    async def create_topic(self, topic: str, queues: int = 4, message_type: str | None = None) -> None:
        extra = {"attributes": f"+message.type={message_type}"} if message_type else {}
        await self.admin(
            RequestCode.UPDATE_AND_CREATE_TOPIC, topic=topic, defaultTopic="TBW102", readQueueNums=queues,
            writeQueueNums=queues, perm=6, topicFilterType="SINGLE_TAG", order=False, **extra,
        )  # fmt: skip

    async def create_group(self, group: str, *, retry_max_times: int = 16, orderly: bool = False) -> None:
        body = json.dumps(
            {
                "groupName": group,
                "retryMaxTimes": retry_max_times,
                "consumeMessageOrderly": orderly,
                "consumeEnable": True,
                "retryQueueNums": 1,
            }
        ).encode()
        await self.admin(RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, body)

    async def stored(self, topic: str, message_id: str) -> list[MessageRecord]:
        """The records of ``message_id`` on any broker (QUERY_MESSAGE by unique key)."""
        client = RemotingClient()
        try:
            found: list[MessageRecord] = []
            for addr in self.brokers:
                fields = {"topic": topic, "key": message_id, "maxNum": "32", "beginTimestamp": "0",
                          "endTimestamp": str(2**63 - 1), "_UNIQUE_KEY_QUERY": "true"}  # fmt: skip
                resp = await client.invoke(
                    addr, RemotingCommand.request(RequestCode.QUERY_MESSAGE, fields), 10.0
                )
                if resp.code == ResponseCode.SUCCESS:
                    found += decode_records(resp.body_bytes())
            return found
        finally:
            await client.close()

    async def members(self, group: str) -> list[dict[str, Any]]:
        """The group's members on every broker (GET_CONSUMER_CONNECTION_LIST ``connectionSet`` entries)."""
        client = RemotingClient()
        try:
            found: list[dict[str, Any]] = []
            for addr in self.brokers:
                request = RemotingCommand.request(
                    RequestCode.GET_CONSUMER_CONNECTION_LIST, {"consumerGroup": group}
                )
                resp = await client.invoke(addr, request, 10.0)
                if resp.code == ResponseCode.SUCCESS:
                    found += json.loads(resp.body_bytes())["connectionSet"]
            return found
        finally:
            await client.close()

    def describe(self) -> str:
        logs = "\n".join(f"--- {p.component} log tail:\n{p.log_tail(40)}" for p in self.processes)
        return logs + "\n" + "\n".join(c.describe() for c in self.clients)

    async def aclose(self) -> None:
        await asyncio.gather(*(c.kill() for c in self.clients), return_exceptions=True)
        codes = [await p.stop() for p in reversed(self.processes)]
        assert codes == [0] * len(codes), f"servers did not stop cleanly: {codes}\n{self.describe()}"


async def _standalone_process(tmp_path: Path, props: dict[str, str]) -> tuple[ServerProcess, dict[str, str]]:
    log_path = tmp_path / "standalone.log"
    args = [
        sys.executable, "-m", "orbitmq.cli", "standalone", "--data-dir", str(tmp_path / "data"),
        "--namesrv-port", "0", "--broker-port", "0", "--proxy-port", "0", "--metrics-port", "0",
        "--log-level", "INFO",
    ]  # fmt: skip
    for k, v in props.items():
        args += ["--set", f"{k}={v}"]
    with open(log_path, "ab") as log_file:
        proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=_ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
        )
    assert proc.stdout is not None
    addrs: dict[str, str] = {}
    try:
        async with asyncio.timeout(60):
            while "standalone" not in addrs:
                line = (await proc.stdout.readline()).decode()
                if not line:
                    raise RuntimeError(f"standalone exited before it was ready:\n{log_path.read_text()}")
                words = line.split()
                if len(words) == 5 and words[0] == "orbitmq" and words[2:4] == ["ready", "on"]:
                    addrs[words[1]] = words[4]
    except BaseException:
        proc.kill()
        await proc.wait()
        raise

    async def drain() -> None:
        assert proc.stdout is not None
        while await proc.stdout.readline():
            pass

    server = ServerProcess("standalone", proc, addrs["standalone"], log_path, asyncio.create_task(drain()))
    return server, addrs


@contextlib.asynccontextmanager
async def standalone(
    tmp_path: Path, broker_props: dict[str, str] | None = None, **props: str
) -> AsyncIterator[ProxiedServers]:
    """``orbitmq standalone`` with its proxy on a free port; ``props`` (proxy keys) and ``broker_props`` go in
    as ``--set key=value``."""
    server, addrs = await _standalone_process(tmp_path, {**FAST_PROXY_PROPS, **(broker_props or {}), **props})
    servers = ProxiedServers(addrs["proxy"], [server], [addrs["broker"]], "standalone")
    try:
        yield servers
    finally:
        await servers.aclose()


@contextlib.asynccontextmanager
async def proxied_cluster(
    tmp_path: Path, broker_props: dict[str, str] | None = None, **props: str
) -> AsyncIterator[ProxiedServers]:
    """A NameServer, brokers broker-a and broker-b, and ``orbitmq proxy`` (cluster mode), each a process.
    ``props`` are proxy keys, ``broker_props`` broker keys."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    started: list[ServerProcess] = []
    try:
        ns = await start_namesrv(log_dir)
        started.append(ns)
        for name in ("broker-a", "broker-b"):
            props_b = {**(broker_props or {}), "brokerName": name}
            started.append(await start_broker(ns.address, tmp_path / name, log_dir, **props_b))
        args = ["--namesrv", ns.address, "--log-level", "INFO"]
        for k, v in {**FAST_PROXY_PROPS, **props}.items():
            args += ["--set", f"{k}={v}"]
        started.append(await _spawn("proxy", args, log_dir / "proxy.log"))
    except BaseException:
        for p in reversed(started):
            await p.stop()
        raise
    servers = ProxiedServers(started[-1].address, started, [p.address for p in started[1:3]], "cluster")
    try:
        yield servers
    finally:
        await servers.aclose()
