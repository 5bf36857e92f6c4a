"""Topic routes as the clients use them (remoting-protocol.md §5.1), and queue selection for sends. Pure.

A route gives publish queues (QueueData with WRITE perm whose broker has a master, ids ``0..write-1``),
subscribe queues (READ perm, ids ``0..read-1``) and the master address of every broker by name.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from orbitmq.client.model import Message, MessageQueue
from orbitmq.core.errors import ProtocolError
from orbitmq.protocol import fastjson
from orbitmq.protocol.record import java_string_hash

__all__ = [
    "PERM_READ",
    "PERM_WRITE",
    "MessageQueueSelector",
    "QueueSelector",
    "TopicRoute",
    "parse_topic_route",
    "select_by_hash",
]

PERM_READ = 4
PERM_WRITE = 2
MASTER_ID = 0

#: ``(queues, message, arg) -> queue``: an application's choice of queue (orderly sends).
MessageQueueSelector: TypeAlias = Callable[[Sequence[MessageQueue], Message, Any], MessageQueue]


@dataclass(frozen=True, slots=True)
class TopicRoute:
    topic: str
    publish_queues: tuple[MessageQueue, ...]
    subscribe_queues: tuple[MessageQueue, ...]
    #: brokerName → {brokerId: "ip:port"}
    broker_addrs: dict[str, dict[int, str]]
    cluster_by_broker: dict[str, str]

    def master_addr(self, broker_name: str) -> str | None:
        return self.broker_addrs.get(broker_name, {}).get(MASTER_ID)

    def any_addr(self, broker_name: str, broker_id: int = MASTER_ID) -> str | None:
        """``brokerAddrs[id]``, falling back to the master, then to any address of that broker."""
        addrs = self.broker_addrs.get(broker_name, {})
        return addrs.get(broker_id) or addrs.get(MASTER_ID) or next(iter(addrs.values()), None)

    def master_addrs(self) -> list[str]:
        return sorted({a for addrs in self.broker_addrs.values() if (a := addrs.get(MASTER_ID))})


def parse_topic_route(topic: str, body: bytes) -> TopicRoute:
    """GET_ROUTEINFO_BY_TOPIC body → TopicRoute; accepts fastjson's unquoted integer keys."""
    try:
        data = fastjson.loads(body)
        broker_addrs: dict[str, dict[int, str]] = {}
        clusters: dict[str, str] = {}
        for bd in data.get("brokerDatas") or []:
            name = str(bd["brokerName"])
            broker_addrs[name] = {int(k): str(v) for k, v in (bd.get("brokerAddrs") or {}).items()}
            clusters[name] = str(bd.get("cluster", ""))
        pub: list[MessageQueue] = []
        sub: list[MessageQueue] = []
        for qd in sorted(data.get("queueDatas") or [], key=lambda q: str(q["brokerName"])):
            name, perm = str(qd["brokerName"]), int(qd["perm"])
            if perm & PERM_WRITE and MASTER_ID in broker_addrs.get(name, {}):
                pub += [MessageQueue(topic, name, i) for i in range(int(qd["writeQueueNums"]))]
            if perm & PERM_READ:
                sub += [MessageQueue(topic, name, i) for i in range(int(qd["readQueueNums"]))]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"malformed route for topic {topic!r}: {exc!r}") from exc
    return TopicRoute(topic, tuple(pub), tuple(sorted(sub)), broker_addrs, clusters)


class QueueSelector:
    """Round robin over a topic's publish queues, starting at a random index (as the Java producer's
    ``sendWhichQueue``), avoiding the broker that failed the previous attempt when another one exists."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._index: dict[str, int] = {}

    def select(self, route: TopicRoute, last_failed_broker: str | None = None) -> MessageQueue:
        queues = route.publish_queues
        if not queues:
            raise ProtocolError(f"topic {route.topic!r} has no writable queue")
        start = self._index.get(route.topic)
        if start is None:
            start = self._rng.randrange(len(queues))
        for step in range(len(queues)):
            mq = queues[(start + step) % len(queues)]
            if mq.broker_name != last_failed_broker:
                self._index[route.topic] = start + step + 1
                return mq
        self._index[route.topic] = start + 1
        return queues[start % len(queues)]


def select_by_hash(queues: Sequence[MessageQueue], msg: Message, key: Any) -> MessageQueue:
    """Same key → same queue (``SelectMessageQueueByHash``: |Java hashCode| mod queue count)."""
    return queues[abs(java_string_hash(str(key))) % len(queues)]
