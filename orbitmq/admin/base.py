"""What every part of the AdminClient shares: the NameServer and broker plumbing, cluster lookups and the
decoding of Java admin bodies (MessageQueue-keyed maps in fastjson's object-key form).

A non-success response raises :class:`~orbitmq.core.errors.BrokerError` with the server's code and remark;
a NameServer or broker that cannot be reached raises :class:`~orbitmq.core.errors.ClientError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Final

from orbitmq.core.errors import BrokerError, ClientError, ProtocolError
from orbitmq.net import RemotingClient
from orbitmq.protocol import fastjson
from orbitmq.protocol.codes import RequestCode, ResponseCode, error_for
from orbitmq.protocol.command import RemotingCommand

__all__ = [
    "DEFAULT_CLUSTER", "MASTER_ID", "AdminBase", "BrokerChange", "BrokerRef", "check", "json_body", "mq_table",
]  # fmt: skip

DEFAULT_CLUSTER: Final = "DefaultCluster"
MASTER_ID: Final = "0"


@dataclass(frozen=True, slots=True)
class BrokerChange:
    """What one broker holds after a create/update (``config``: the broker's config JSON of the object), or
    that it deleted it. Subclasses name the JSON key of that config."""

    broker_name: str
    broker_addr: str
    action: str  # "created", "updated" or "deleted"
    config: dict[str, Any] | None = None

    config_key: ClassVar[str] = "config"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"brokerName": self.broker_name, "brokerAddr": self.broker_addr,
                               "action": self.action}  # fmt: skip
        if self.config is not None:
            out[self.config_key] = self.config
        return out


@dataclass(frozen=True, slots=True, order=True)
class BrokerRef:
    """A master broker: its name, address and cluster."""

    name: str
    addr: str
    cluster: str = ""


def check(response: RemotingCommand) -> RemotingCommand:
    if response.code != ResponseCode.SUCCESS:
        raise error_for(response.code, response.remark or "")
    return response


def json_body(response: RemotingCommand, what: str) -> Any:
    try:
        return fastjson.loads(response.body_bytes())
    except (ProtocolError, ValueError) as exc:
        raise ProtocolError(f"malformed {what} body: {exc}") from exc


def json_object(response: RemotingCommand, what: str) -> dict[str, Any]:
    body = json_body(response, what)
    if not isinstance(body, dict):
        raise ProtocolError(f"{what} body is not an object")
    return body


def mq_table(table: object, what: str) -> list[tuple[tuple[str, str, int], Any]]:
    """A ``Map<MessageQueue, V>`` body member → [((topic, brokerName, queueId), value)], sorted."""
    if not isinstance(table, Mapping):
        raise ProtocolError(f"{what}: offsetTable is not an object")
    out = []
    for key, value in table.items():
        mq = fastjson.loads(key) if isinstance(key, str) else key  # quoted-string keys from other servers
        if not isinstance(mq, Mapping):
            raise ProtocolError(f"{what}: key {key!r} is not a MessageQueue")
        try:
            out.append(((str(mq["topic"]), str(mq["brokerName"]), int(mq["queueId"])), value))
        except (KeyError, ValueError, TypeError) as exc:
            raise ProtocolError(f"{what}: bad MessageQueue {key!r}") from exc
    return sorted(out, key=lambda e: e[0])


class AdminBase:
    """Connections to one or more NameServers (``"h:p"`` or ``"h:p;h:p"``) and the brokers they name."""

    def __init__(
        self,
        namesrv_addr: str | Sequence[str],
        *,
        timeout_s: float = 5.0,
        client: RemotingClient | None = None,
    ) -> None:
        addrs = namesrv_addr.split(";") if isinstance(namesrv_addr, str) else list(namesrv_addr)
        self.namesrv_addrs = [a.strip() for a in addrs if a.strip()]
        if not self.namesrv_addrs:
            raise ClientError("no NameServer address given")
        self.timeout_s = timeout_s
        self._own_client = client is None
        self.client = client if client is not None else RemotingClient()

    async def close(self) -> None:
        if self._own_client:
            await self.client.close()

    async def __aenter__(self) -> AdminBase:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- plumbing ----------------------------------------------------------------------------------------
    async def _invoke(
        self, addr: str, code: int, fields: Mapping[str, object] | None = None, body: bytes = b""
    ) -> RemotingCommand:
        ext = {k: _java(v) for k, v in (fields or {}).items() if v is not None}
        request = RemotingCommand.request(code, ext, body)
        return check(await self.client.invoke(addr, request, self.timeout_s))

    async def _namesrv(self, code: int, fields: Mapping[str, object] | None = None) -> RemotingCommand:
        """The first NameServer that answers; ClientError if none can be reached."""
        failure: ClientError | None = None
        for addr in self.namesrv_addrs:
            try:
                return await self._invoke(addr, code, fields)
            except ClientError as exc:
                failure = exc
        assert failure is not None
        raise failure

    # -- cluster lookups ---------------------------------------------------------------------------------
    async def cluster_info(self) -> dict[str, Any]:
        """ClusterInfo (§5.6): ``brokerAddrTable`` and ``clusterAddrTable``."""
        return json_object(await self._namesrv(RequestCode.GET_BROKER_CLUSTER_INFO), "cluster info")

    async def masters(self, cluster: str | None = None) -> list[BrokerRef]:
        """Every master broker (of ``cluster`` when given), sorted by name."""
        info = await self.cluster_info()
        table = info.get("brokerAddrTable") or {}
        out = []
        for cname, names in sorted((info.get("clusterAddrTable") or {}).items()):
            if cluster is not None and cname != cluster:
                continue
            for name in sorted(names or []):
                addr = ((table.get(name) or {}).get("brokerAddrs") or {}).get(MASTER_ID)
                if addr:
                    out.append(BrokerRef(str(name), str(addr), str(cname)))
        return sorted(out)

    async def cluster_masters(self, cluster: str) -> dict[str, str]:
        """brokerName → master address of every broker of ``cluster``; BrokerError if it has none."""
        masters = {b.name: b.addr for b in await self.masters(cluster)}
        if not masters:
            raise BrokerError(
                ResponseCode.SYSTEM_ERROR, f"cluster {cluster!r} has no master broker registered"
            )
        return masters

    async def topic_route(self, topic: str) -> dict[str, Any]:
        """TopicRouteData (§5.1) as JSON; BrokerError(TOPIC_NOT_EXIST) when no broker serves it."""
        response = await self._namesrv(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
        return json_object(response, "topic route")

    async def topic_masters(self, topic: str) -> list[tuple[BrokerRef, int]]:
        """(master, read queue count) of every broker that serves ``topic``, from its route."""
        route = await self.topic_route(topic)
        addrs = {
            str(bd["brokerName"]): (bd.get("brokerAddrs") or {}) for bd in route.get("brokerDatas") or []
        }
        out = []
        for qd in route.get("queueDatas") or []:
            name = str(qd["brokerName"])
            addr = addrs.get(name, {}).get(MASTER_ID) or addrs.get(name, {}).get(0)
            if addr:
                out.append((BrokerRef(name, str(addr)), int(qd["readQueueNums"])))
        return sorted(out)

    async def broker_addr(self, broker_name: str) -> str:
        """The master address of ``broker_name``; BrokerError(BROKER_NOT_EXIST) when none is registered."""
        for b in await self.masters():
            if b.name == broker_name:
                return b.addr
        raise BrokerError(ResponseCode.BROKER_NOT_EXIST, f"no master broker named {broker_name!r}")


def _java(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
