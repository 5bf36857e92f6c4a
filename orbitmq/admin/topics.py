"""Topic administration, as RocketMQ's ``DefaultMQAdminExt`` does it.

A topic is created, updated and deleted on every master of a cluster (UPDATE_AND_CREATE_TOPIC 17,
DELETE_TOPIC_IN_BROKER 215); the masters come from the NameServer's cluster info (GET_BROKER_CLUSTER_INFO
106). A delete then drops the cluster's routes from every NameServer (DELETE_TOPIC_IN_NAMESRV 216), since a
broker only re-registers the topics it still has. Status is GET_TOPIC_STATS_INFO (202) of every broker in
the topic's route: min and max offset and last update time per queue.

The message type travels as the attribute modification ``+message.type=FIFO``, as upstream's mqadmin sends
it (the broker keeps it as the topic's ``message.type`` attribute).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

from orbitmq.admin.base import DEFAULT_CLUSTER, AdminBase, BrokerChange, json_object, mq_table
from orbitmq.core.errors import ClientError, ProtocolError
from orbitmq.protocol.codes import RequestCode

__all__ = ["MESSAGE_TYPES", "BrokerTopicChange", "QueueStatus", "TopicAdmin", "TopicSettings"]

#: Values an admin may give ``message.type`` (MIXED and UNSPECIFIED are refused by the broker).
MESSAGE_TYPES: Final = ("NORMAL", "FIFO", "DELAY", "TRANSACTION")
MESSAGE_TYPE_ATTRIBUTE: Final = "message.type"
DEFAULT_TOPIC: Final = "TBW102"  # the ``defaultTopic`` header upstream's admin sends
PERM_RW: Final = 6


@dataclass(frozen=True, slots=True)
class TopicSettings:
    """What an update changes; ``None`` keeps the broker's current value."""

    queues: int | None = None
    message_type: str | None = None
    perm: int | None = None


@dataclass(frozen=True, slots=True)
class BrokerTopicChange(BrokerChange):
    config_key: ClassVar[str] = "topicConfig"


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """One queue of a topic (TopicOffset of GET_TOPIC_STATS_INFO)."""

    broker_name: str
    queue_id: int
    min_offset: int
    max_offset: int
    last_update_ms: int

    @property
    def messages(self) -> int:
        return max(0, self.max_offset - self.min_offset)

    def to_json(self) -> dict[str, Any]:
        return {"brokerName": self.broker_name, "queueId": self.queue_id, "minOffset": self.min_offset,
                "maxOffset": self.max_offset, "lastUpdateTimestamp": self.last_update_ms}  # fmt: skip


def _attributes(message_type: str | None) -> str | None:
    if message_type is None:
        return None
    if message_type not in MESSAGE_TYPES:
        raise ClientError(
            f"unknown message type {message_type!r}: expected one of {', '.join(MESSAGE_TYPES)}"
        )
    return f"+{MESSAGE_TYPE_ATTRIBUTE}={message_type}"


class TopicAdmin(AdminBase):
    async def topic_list(self) -> list[str]:
        body = json_object(await self._namesrv(RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER), "topic list")
        return sorted(str(t) for t in (body.get("topicList") or []))

    async def topic_config(self, broker_addr: str, topic: str) -> dict[str, Any]:
        """The broker's TopicConfig JSON (GET_TOPIC_CONFIG 351); BrokerError(TOPIC_NOT_EXIST) if absent."""
        response = await self._invoke(broker_addr, RequestCode.GET_TOPIC_CONFIG, {"topic": topic})
        return json_object(response, "topic config")

    async def topic_status(self, topic: str) -> list[QueueStatus]:
        """Min/max offset of every queue of ``topic`` on every broker of its route."""
        out = []
        for broker, _ in await self.topic_masters(topic):
            body = json_object(
                await self._invoke(broker.addr, RequestCode.GET_TOPIC_STATS_INFO, {"topic": topic}),
                "topic stats",
            )
            for (_t, name, qid), stats in mq_table(body.get("offsetTable") or {}, "topic stats"):
                if not isinstance(stats, dict):
                    raise ProtocolError("topic stats: a TopicOffset is not an object")
                out.append(QueueStatus(name, qid, int(stats.get("minOffset", 0)), int(stats.get("maxOffset", 0)),
                                       int(stats.get("lastUpdateTimestamp", 0))))  # fmt: skip
        return sorted(out, key=lambda s: (s.broker_name, s.queue_id))

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
        fields: dict[str, object] = {
            "topic": topic,
            "defaultTopic": DEFAULT_TOPIC,
            "readQueueNums": read,
            "writeQueueNums": write,
            "perm": perm,
            "topicFilterType": str((old or {}).get("topicFilterType", "SINGLE_TAG")),
            "topicSysFlag": int((old or {}).get("topicSysFlag", 0)),
            "order": bool((old or {}).get("order")),
            "attributes": attributes,
        }
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
