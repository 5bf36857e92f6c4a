"""AdminClient: topic administration over the remoting protocol, as RocketMQ's ``DefaultMQAdminExt`` does it.

A topic is created, updated and deleted on every master of a cluster (UPDATE_AND_CREATE_TOPIC 17,
DELETE_TOPIC_IN_BROKER 215); the masters come from the NameServer's cluster info (GET_BROKER_CLUSTER_INFO
106, remoting-protocol §5.6). A delete then drops the cluster's routes from every NameServer
(DELETE_TOPIC_IN_NAMESRV 216), since a broker only re-registers the topics it still has.

The message type travels as the attribute modification ``+message.type=FIFO`` (the broker strips the sign).
A non-success response raises :class:`~orbitmq.core.errors.BrokerError` with the server's code and remark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

from orbitmq.core.errors import BrokerError, ClientError, ProtocolError
from orbitmq.net import RemotingClient
from orbitmq.protocol import fastjson
from orbitmq.protocol.codes import RequestCode, ResponseCode, error_for
from orbitmq.protocol.command import RemotingCommand

__all__ = [
    "DEFAULT_CLUSTER",
    "MESSAGE_TYPES",
    "AdminClient",
    "BrokerTopicChange",
    "TopicSettings",
]

DEFAULT_CLUSTER: Final = "DefaultCluster"
#: Values an admin may give ``message.type`` (MIXED and UNSPECIFIED are refused by the broker).
MESSAGE_TYPES: Final = ("NORMAL", "FIFO", "DELAY", "TRANSACTION")
MESSAGE_TYPE_ATTRIBUTE: Final = "message.type"
DEFAULT_TOPIC: Final = "TBW102"  # the ``defaultTopic`` header upstream's admin sends
PERM_RW: Final = 6
MASTER_ID: Final = "0"


@dataclass(frozen=True, slots=True)
class TopicSettings:
    """What an update changes; ``None`` keeps the broker's current value."""

    queues: int | None = None
    message_type: str | None = None
    perm: int | None = None


@dataclass(frozen=True, slots=True)
class BrokerTopicChange:
    """What one broker holds after a create/update (``config`` = TopicConfig JSON), or that it deleted."""

    broker_name: str
    broker_addr: str
    action: str  # "created", "updated" or "deleted"
    config: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"brokerName": self.broker_name, "brokerAddr": self.broker_addr,
                               "action": self.action}  # fmt: skip
        if self.config is not None:
            out["topicConfig"] = self.config
        return out


def _check(response: RemotingCommand) -> RemotingCommand:
    if response.code != ResponseCode.SUCCESS:
        raise error_for(response.code, response.remark or "")
    return response


def _json_body(response: RemotingCommand, what: str) -> Any:
    try:
        return fastjson.loads(response.body_bytes())
    except (ProtocolError, ValueError) as exc:
        raise ProtocolError(f"malformed {what} body: {exc}") from exc


def _attributes(message_type: str | None) -> str | None:
    if message_type is None:
        return None
    if message_type not in MESSAGE_TYPES:
        raise ClientError(
            f"unknown message type {message_type!r}: expected one of {', '.join(MESSAGE_TYPES)}"
        )
    return f"+{MESSAGE_TYPE_ATTRIBUTE}={message_type}"


class AdminClient:
    """Topic administration through one or more NameServers (``"h:p"`` or ``"h:p;h:p"``)."""

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

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- plumbing ----------------------------------------------------------------------------------------
    async def _invoke(self, addr: str, code: int, fields: dict[str, str]) -> RemotingCommand:
        return _check(await self.client.invoke(addr, RemotingCommand.request(code, fields), self.timeout_s))

    async def _namesrv(self, code: int, fields: dict[str, str] | None = None) -> RemotingCommand:
        """The first NameServer that answers (any response code); ClientError if none can be reached."""
        failure: ClientError | None = None
        for addr in self.namesrv_addrs:
            try:
                return await self._invoke(addr, code, fields or {})
            except ClientError as exc:
                failure = exc
        assert failure is not None
        raise failure

    # -- queries -----------------------------------------------------------------------------------------
    async def cluster_info(self) -> dict[str, Any]:
        """ClusterInfo (§5.6): ``brokerAddrTable`` and ``clusterAddrTable``."""
        body = _json_body(await self._namesrv(RequestCode.GET_BROKER_CLUSTER_INFO), "cluster info")
        if not isinstance(body, dict):
            raise ProtocolError("cluster info body is not an object")
        return body

    async def cluster_masters(self, cluster: str) -> dict[str, str]:
        """brokerName → master address of every broker of ``cluster``; BrokerError if it has none."""
        info = await self.cluster_info()
        names = (info.get("clusterAddrTable") or {}).get(cluster) or []
        table = info.get("brokerAddrTable") or {}
        masters = {}
        for name in sorted(names):
            addr = ((table.get(name) or {}).get("brokerAddrs") or {}).get(MASTER_ID)
            if addr:
                masters[name] = str(addr)
        if not masters:
            raise BrokerError(
                ResponseCode.SYSTEM_ERROR, f"cluster {cluster!r} has no master broker registered"
            )
        return masters

    async def topic_list(self) -> list[str]:
        body = _json_body(await self._namesrv(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER), "topic list")
        if not isinstance(body, dict):
            raise ProtocolError("topic list body is not an object")
        return sorted(str(t) for t in (body.get("topicList") or []))

    async def topic_route(self, topic: str) -> dict[str, Any]:
        """TopicRouteData (§5.1) as JSON; BrokerError(TOPIC_NOT_EXIST) when no broker serves it."""
        response = await self._namesrv(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
        body = _json_body(response, "topic route")
        if not isinstance(body, dict):
            raise ProtocolError("topic route body is not an object")
        return body

    async def topic_config(self, broker_addr: str, topic: str) -> dict[str, Any]:
        """The broker's TopicConfig JSON (GET_TOPIC_CONFIG 351); BrokerError(TOPIC_NOT_EXIST) if absent."""
        body = _json_body(await self._invoke(broker_addr, RequestCode.GET_TOPIC_CONFIG, {"topic": topic}),
                          "topic config")  # fmt: skip
        if not isinstance(body, dict):
            raise ProtocolError("topic config body is not an object")
        return body

    # -- changes -----------------------------------------------------------------------------------------
    async def create_topic(
        self,
        topic: str,
        *,
        queues: int = 8,
        message_type: str | None = None,
        perm: int = PERM_RW,
        cluster: str = DEFAULT_CLUSTER,
    ) -> list[BrokerTopicChange]:
        """Create (or overwrite) ``topic`` with ``queues`` read and write queues on every master of ``cluster``."""
        attributes = _attributes(message_type)
        out = []
        for name, addr in (await self.cluster_masters(cluster)).items():
            await self._put_topic(addr, topic, queues, queues, perm, attributes)
            out.append(BrokerTopicChange(name, addr, "created", await self.topic_config(addr, topic)))
        return out

    async def update_topic(
        self, topic: str, settings: TopicSettings, *, cluster: str = DEFAULT_CLUSTER
    ) -> list[BrokerTopicChange]:
        """Change the given settings of an existing topic on every master of ``cluster``, keeping the rest.

        Raises BrokerError(TOPIC_NOT_EXIST) (before changing anything) if a master lacks the topic.
        """
        masters = await self.cluster_masters(cluster)
        current = {name: await self.topic_config(addr, topic) for name, addr in masters.items()}
        out = []
        for name, addr in masters.items():
            old = current[name]
            # The broker replaces attributes wholesale when none are sent, so the current type is re-sent.
            old_type = (old.get("attributes") or {}).get(MESSAGE_TYPE_ATTRIBUTE)
            attributes = _attributes(settings.message_type or old_type)
            read = settings.queues if settings.queues is not None else int(old["readQueueNums"])
            write = settings.queues if settings.queues is not None else int(old["writeQueueNums"])
            perm = settings.perm if settings.perm is not None else int(old["perm"])
            await self._put_topic(addr, topic, read, write, perm, attributes, old)
            out.append(BrokerTopicChange(name, addr, "updated", await self.topic_config(addr, topic)))
        return out

    async def _put_topic(
        self,
        addr: str,
        topic: str,
        read: int,
        write: int,
        perm: int,
        attributes: str | None,
        old: dict[str, Any] | None = None,
    ) -> None:
        fields = {
            "topic": topic,
            "defaultTopic": DEFAULT_TOPIC,
            "readQueueNums": str(read),
            "writeQueueNums": str(write),
            "perm": str(perm),
            "topicFilterType": str((old or {}).get("topicFilterType", "SINGLE_TAG")),
            "topicSysFlag": str((old or {}).get("topicSysFlag", 0)),
            "order": "true" if (old or {}).get("order") else "false",
        }
        if attributes is not None:
            fields["attributes"] = attributes
        await self._invoke(addr, RequestCode.UPDATE_AND_CREATE_TOPIC, fields)

    async def delete_topic(self, topic: str, *, cluster: str = DEFAULT_CLUSTER) -> list[BrokerTopicChange]:
        """Delete ``topic`` on every master of ``cluster``, then the cluster's routes on every NameServer."""
        out = []
        for name, addr in (await self.cluster_masters(cluster)).items():
            await self._invoke(addr, RequestCode.DELETE_TOPIC_IN_BROKER, {"topic": topic})
            out.append(BrokerTopicChange(name, addr, "deleted"))
        for ns in self.namesrv_addrs:
            await self._invoke(
                ns, RequestCode.DELETE_TOPIC_IN_NAMESRV, {"topic": topic, "clusterName": cluster}
            )
        return out
