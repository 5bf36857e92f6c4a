"""OrbitMQ servers in their own processes, for the compat tests (the real clients run in other processes too).

Each server is the ``orbitmq`` command itself (``python -m orbitmq.cli namesrv|broker ...``): the test waits
for its ready line, ``orbitmq <component> ready on HOST:PORT`` (port 0 = a free port), and stops it with
SIGTERM, after which it must exit 0 (the broker unregisters, persists and checkpoints first).

From a test::

    async with orbitmq_cluster(tmp_path, messageDelayLevel="1s 1s 1s") as cluster:
        ...cluster.namesrv_addr...
        await cluster.restart_broker()      # same data directory, same port
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from orbitmq.net import RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from tests.compat.alions import Event, NodeProcess

__all__ = [
    "FAST_CONSUMER",
    "OrbitCluster",
    "ServerProcess",
    "bodies",
    "broker_request",
    "create_topic",
    "delivered",
    "orbitmq_cluster",
    "start_broker",
    "start_namesrv",
    "unexpected_errors",
]

_READY = "orbitmq {} ready on "
_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServerProcess:
    """A server started with :func:`start_namesrv` / :func:`start_broker`; its log goes to ``log_path``."""

    component: str
    proc: asyncio.subprocess.Process
    address: str
    log_path: Path
    _drain: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    async def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait (the server stops cleanly); SIGKILL if it takes longer than ``timeout``."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._drain is not None:
            await asyncio.gather(self._drain, return_exceptions=True)
        return self.proc.returncode or 0

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "".join(self.log_path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
        except OSError:
            return ""


async def _spawn(component: str, args: list[str], log_path: Path, timeout: float = 30.0) -> ServerProcess:
    log_file = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "orbitmq.cli", component, "--host", "127.0.0.1", "--port", "0", *args,
            cwd=_ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=log_file,
        )  # fmt: skip
    finally:
        log_file.close()
    assert proc.stdout is not None
    prefix = _READY.format(component)
    try:
        async with asyncio.timeout(timeout):
            while True:
                line = (await proc.stdout.readline()).decode()
                if not line:
                    raise RuntimeError(f"{component} exited before it was ready:\n{log_path.read_text()}")
                if line.startswith(prefix):
                    address = line[len(prefix) :].strip()
                    break
    except BaseException:
        proc.kill()
        await proc.wait()
        raise

    async def drain() -> None:
        assert proc.stdout is not None
        while await proc.stdout.readline():
            pass

    return ServerProcess(component, proc, address, log_path, asyncio.create_task(drain()))


async def start_namesrv(log_dir: Path) -> ServerProcess:
    return await _spawn("namesrv", ["--log-level", "INFO"], log_dir / "namesrv.log")


async def start_broker(
    namesrv_addr: str, data_dir: Path, log_dir: Path, port: int = 0, **props: str
) -> ServerProcess:
    """A broker on ``data_dir``; ``props`` are RocketMQ broker properties (``messageDelayLevel=...``)."""
    args = [
        "--namesrv",
        namesrv_addr,
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--log-level",
        "INFO",
    ]
    for key, value in props.items():
        args += ["--set", f"{key}={value}"]
    return await _spawn("broker", args, log_dir / "broker.log")


@dataclass
class OrbitCluster:
    namesrv: ServerProcess
    broker: ServerProcess
    data_dir: Path
    log_dir: Path
    props: dict[str, str]

    @property
    def namesrv_addr(self) -> str:
        return self.namesrv.address

    async def restart_broker(self) -> ServerProcess:
        """Stop the broker cleanly and start it again on the same directory and port."""
        port = self.broker.port
        assert await self.broker.stop() == 0, self.broker.log_tail()
        self.broker = await start_broker(self.namesrv_addr, self.data_dir, self.log_dir, port, **self.props)
        return self.broker

    def describe(self) -> str:
        return f"--- broker log tail:\n{self.broker.log_tail()}\n--- namesrv log tail:\n{self.namesrv.log_tail()}"


@contextlib.asynccontextmanager
async def orbitmq_cluster(tmp_path: Path, **props: str) -> AsyncIterator[OrbitCluster]:
    """A NameServer and a Broker, each in its own process, on free ports; stopped (cleanly) on exit."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    namesrv = await start_namesrv(log_dir)
    try:
        broker = await start_broker(namesrv.address, tmp_path / "store", log_dir, **props)
    except BaseException:
        await namesrv.stop()
        raise
    cluster = OrbitCluster(namesrv, broker, tmp_path / "store", log_dir, dict(props))
    try:
        yield cluster
    finally:
        codes = [await cluster.broker.stop(), await cluster.namesrv.stop()]
        assert codes == [0, 0], f"servers did not stop cleanly: {codes}\n{cluster.describe()}"


# -- helpers for the ali-ons tests -------------------------------------------------------------------------
#: ali-ons Consumer options that make a test wait seconds, not tens of seconds: rebalance every second
#: (default 10 s) and persist offsets every second (default 5 s). Everything else is ali-ons' default.
FAST_CONSUMER: dict[str, object] = {"rebalanceInterval": 1000, "persistConsumerOffsetInterval": 1000}


async def broker_request(
    cluster: OrbitCluster, code: int, body: bytes = b"", **fields: object
) -> RemotingCommand:
    """One request to the cluster's broker from the test process (admin calls, offset checks)."""
    client = RemotingClient()
    try:
        ext = {k: ("true" if v else "false") if isinstance(v, bool) else str(v) for k, v in fields.items()}
        return await client.invoke(cluster.broker.address, RemotingCommand.request(code, ext, body), 10.0)
    finally:
        await client.close()


async def create_topic(cluster: OrbitCluster, topic: str, queues: int = 4) -> None:
    """Create ``topic`` on the broker (UPDATE_AND_CREATE_TOPIC); routable as soon as this returns. ali-ons
    needs it: a route query answered TOPIC_NOT_EXIST makes its ``send()`` throw (no TBW102 fallback)."""
    r = await broker_request(
        cluster, RequestCode.UPDATE_AND_CREATE_TOPIC, topic=topic, defaultTopic="TBW102", readQueueNums=queues,
        writeQueueNums=queues, perm=6, topicFilterType="SINGLE_TAG", order=False,
    )  # fmt: skip
    assert r.code == ResponseCode.SUCCESS, r.remark


async def delivered(consumer: NodeProcess, count: int, timeout: float = 30.0, since: int = 0) -> list[Event]:
    """The first ``count`` ``msg`` events of ``consumer`` (from event index ``since``)."""
    return await consumer.wait_for_count(lambda e: e.get("event") == "msg", count, timeout, since=since)


def unexpected_errors(proc: NodeProcess) -> list[Event]:
    """``error`` events other than the handler failures a test asked for (``fail`` rule of consumer.js)."""
    return [e for e in proc.find("error") if "failing this delivery on purpose" not in e["error"]["message"]]


def bodies(msgs: list[Event]) -> list[str]:
    """Message bodies in natural order (msg-2 before msg-10)."""
    return sorted((m["body"] for m in msgs), key=lambda b: (len(b), b))
