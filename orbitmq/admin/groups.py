"""Consumer group administration: subscription group configs on every master of a cluster, and what a
group is doing (members, subscriptions, lag per queue).

Configs: UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200, body = SubscriptionGroupConfig JSON),
GET_SUBSCRIPTIONGROUP_CONFIG (352, header ``group``), GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201),
DELETE_SUBSCRIPTIONGROUP (207, ``groupName``, ``cleanOffset``). A FIFO group is
``consumeMessageOrderly=true``; the retry maximum is ``retryMaxTimes``.

Activity: GET_CONSUMER_CONNECTION_LIST (203) of every master, merged (each broker knows the members that
heartbeat to it; CONSUMER_NOT_ONLINE from one broker is not an error), and GET_CONSUME_STATS (208) of every
master: lag = broker max offset - committed offset, per queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from orbitmq.admin.base import DEFAULT_CLUSTER, AdminBase, BrokerChange, json_object, mq_table
from orbitmq.core.errors import BrokerError, ProtocolError
from orbitmq.protocol.codes import RequestCode, ResponseCode

__all__ = ["GroupAdmin", "GroupChange", "GroupDescription", "GroupSettings", "Member", "QueueLag"]

#: consumeType → the mode an operator knows.
CONSUME_MODES = {"CONSUME_PASSIVELY": "PUSH", "CONSUME_ACTIVELY": "PULL", "CONSUME_POP": "POP"}


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """What an update changes; ``None`` keeps the current value."""

    fifo: bool | None = None
    retry_max: int | None = None
    consume_enable: bool | None = None


@dataclass(frozen=True, slots=True)
class GroupChange(BrokerChange):
    config_key: ClassVar[str] = "groupConfig"


@dataclass(frozen=True, slots=True)
class Member:
    """One client of the group; it has one connection (address) per broker it heartbeats to."""

    client_id: str
    addresses: tuple[str, ...]  # its side of each connection, "host:port"
    language: str
    version: int
    brokers: tuple[str, ...]  # the brokers it heartbeats to

    @property
    def host(self) -> str:
        return self.addresses[0].rpartition(":")[0] if self.addresses else ""

    def to_json(self) -> dict[str, Any]:
        return {"clientId": self.client_id, "addresses": list(self.addresses), "language": self.language,
                "version": self.version, "brokers": list(self.brokers)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class QueueLag:
    topic: str
    broker_name: str
    queue_id: int
    broker_offset: int  # the queue's max offset
    consumer_offset: int  # committed (0 when none)
    last_timestamp: int  # store time of the last consumed message (0 when none)

    @property
    def lag(self) -> int:
        return max(0, self.broker_offset - self.consumer_offset)

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "brokerName": self.broker_name, "queueId": self.queue_id,
                "brokerOffset": self.broker_offset, "consumerOffset": self.consumer_offset, "lag": self.lag,
                "lastTimestamp": self.last_timestamp}  # fmt: skip


@dataclass(slots=True)
class GroupDescription:
    group: str
    consume_type: str = ""
    message_model: str = ""
    consume_from_where: str = ""
    members: list[Member] = field(default_factory=list)
    subscriptions: dict[str, str] = field(default_factory=dict)  # topic → expression
    lags: list[QueueLag] = field(default_factory=list)

    @property
    def mode(self) -> str:
        if not self.consume_type:
            return "-"
        return f"{self.message_model} {CONSUME_MODES.get(self.consume_type, self.consume_type)}"

    @property
    def total_lag(self) -> int:
        return sum(q.lag for q in self.lags)

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "online": bool(self.members), "consumeType": self.consume_type,
                "messageModel": self.message_model, "consumeFromWhere": self.consume_from_where,
                "members": [m.to_json() for m in self.members], "subscriptions": self.subscriptions,
                "queues": [q.to_json() for q in self.lags], "totalLag": self.total_lag}  # fmt: skip


def new_group_config(name: str, *, fifo: bool = False, retry_max: int = 16) -> dict[str, Any]:
    """A SubscriptionGroupConfig body with upstream's defaults."""
    return {"groupName": name, "consumeEnable": True, "consumeFromMinEnable": True,
            "consumeBroadcastEnable": True, "consumeMessageOrderly": fifo, "retryQueueNums": 1,
            "retryMaxTimes": retry_max, "brokerId": 0, "whichBrokerWhenConsumeSlowly": 1,
            "notifyConsumerIdsChangedEnable": True}  # fmt: skip


class GroupAdmin(AdminBase):
    async def group_config(self, broker_addr: str, group: str) -> dict[str, Any]:
        """The broker's config of ``group``; BrokerError(SUBSCRIPTION_GROUP_NOT_EXIST) when it has none."""
        response = await self._invoke(broker_addr, RequestCode.GET_SUBSCRIPTIONGROUP_CONFIG, {"group": group})
        return json_object(response, "subscription group config")

    async def _put_group(self, addr: str, config: dict[str, Any]) -> dict[str, Any]:
        await self._invoke(addr, RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, body=orjson.dumps(config))
        return await self.group_config(addr, str(config["groupName"]))

    async def create_group(
        self, group: str, *, fifo: bool = False, retry_max: int = 16, cluster: str = DEFAULT_CLUSTER
    ) -> list[GroupChange]:
        """Create (or overwrite) ``group`` on every master of ``cluster``."""
        config = new_group_config(group, fifo=fifo, retry_max=retry_max)
        return [
            GroupChange(name, addr, "created", await self._put_group(addr, config))
            for name, addr in (await self.cluster_masters(cluster)).items()
        ]

    async def update_group(
        self, group: str, settings: GroupSettings, *, cluster: str = DEFAULT_CLUSTER
    ) -> list[GroupChange]:
        """Change the given settings on every master; SUBSCRIPTION_GROUP_NOT_EXIST (nothing changed) if a
        master lacks the group."""
        masters = await self.cluster_masters(cluster)
        current = {name: await self.group_config(addr, group) for name, addr in masters.items()}
        out = []
        for name, addr in masters.items():
            config = dict(current[name])
            if settings.fifo is not None:
                config["consumeMessageOrderly"] = settings.fifo
            if settings.retry_max is not None:
                config["retryMaxTimes"] = settings.retry_max
            if settings.consume_enable is not None:
                config["consumeEnable"] = settings.consume_enable
            out.append(GroupChange(name, addr, "updated", await self._put_group(addr, config)))
        return out

    async def delete_group(
        self, group: str, *, clean_offsets: bool = False, cluster: str = DEFAULT_CLUSTER
    ) -> list[GroupChange]:
        out = []
        for name, addr in (await self.cluster_masters(cluster)).items():
            fields = {"groupName": group, "cleanOffset": clean_offsets}
            await self._invoke(addr, RequestCode.DELETE_SUBSCRIPTIONGROUP, fields)
            out.append(GroupChange(name, addr, "deleted"))
        return out

    async def group_list(self, cluster: str | None = None) -> dict[str, dict[str, Any]]:
        """group name → its config (from the first master that has it) plus ``brokers``: where it exists."""
        out: dict[str, dict[str, Any]] = {}
        for broker in await self.masters(cluster):
            body = json_object(
                await self._invoke(broker.addr, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG),
                "subscription groups",
            )
            for name, config in (body.get("subscriptionGroupTable") or {}).items():
                entry = out.setdefault(str(name), {**config, "brokers": []})
                entry["brokers"].append(broker.name)
        return dict(sorted(out.items()))

    # -- activity ------------------------------------------------------------------------------------------
    async def consume_stats(self, group: str, topic: str | None = None) -> list[QueueLag]:
        """Per-queue offsets and lag of ``group`` on every master (for ``topic`` only when given)."""
        out = []
        brokers = [b for b, _ in await self.topic_masters(topic)] if topic else await self.masters()
        for broker in brokers:
            response = await self._invoke(
                broker.addr, RequestCode.GET_CONSUME_STATS, {"consumerGroup": group, "topic": topic}
            )
            body = json_object(response, "consume stats")
            for (t, name, qid), s in mq_table(body.get("offsetTable") or {}, "consume stats"):
                if not isinstance(s, dict):
                    raise ProtocolError("consume stats: an OffsetWrapper is not an object")
                out.append(QueueLag(t, name, qid, int(s.get("brokerOffset", 0)), int(s.get("consumerOffset", 0)),
                                    int(s.get("lastTimestamp", 0))))  # fmt: skip
        return sorted(out, key=lambda q: (q.topic, q.broker_name, q.queue_id))

    async def describe_group(self, group: str) -> GroupDescription:
        """Members (merged over every master), subscriptions, mode and lag per queue."""
        desc = GroupDescription(group)
        members: dict[str, tuple[dict[str, Any], list[str], list[str]]] = {}
        for broker in await self.masters():
            try:
                body = json_object(
                    await self._invoke(
                        broker.addr, RequestCode.GET_CONSUMER_CONNECTION_LIST, {"consumerGroup": group}
                    ),
                    "consumer connections",
                )
            except BrokerError as exc:
                if exc.code == ResponseCode.CONSUMER_NOT_ONLINE:
                    continue
                raise
            desc.consume_type = str(body.get("consumeType") or desc.consume_type)
            desc.message_model = str(body.get("messageModel") or desc.message_model)
            desc.consume_from_where = str(body.get("consumeFromWhere") or desc.consume_from_where)
            for topic, sub in (body.get("subscriptionTable") or {}).items():
                desc.subscriptions[str(topic)] = str((sub or {}).get("subString", "*"))
            for conn in body.get("connectionSet") or []:
                _, addrs, brokers = members.setdefault(str(conn.get("clientId")), (conn, [], []))
                addrs.append(str(conn.get("clientAddr")))
                brokers.append(broker.name)
        desc.members = [
            Member(
                cid, tuple(addrs), str(conn.get("language", "")), int(conn.get("version", 0)), tuple(brokers)
            )
            for cid, (conn, addrs, brokers) in sorted(members.items())
        ]
        desc.lags = await self.consume_stats(group)
        return desc
