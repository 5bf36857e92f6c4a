"""Message request modes (PULL or POP per topic and group) and broker-side queue assignment, as upstream's
``MessageRequestModeManager`` and ``QueryAssignmentProcessor`` do them (pop-and-storage §2 S0).

Pure functions plus one JSON config manager; the handlers in :mod:`orbitmq.broker.handlers.assignment`
call them. Upstream facts mirrored (apache/rocketmq ``QueryAssignmentProcessor``):

- The mode of (topic, group) is what SET_MESSAGE_REQUEST_MODE (401) stored, else the broker's
  ``defaultMessageRequestMode`` (PULL) with ``defaultPopShareQueueNum`` (-1); retry topics are always PULL.
- Only the strategies ``AVG`` and ``AVG_BY_CIRCLE`` are served; any other name gets no assignment.
- PULL (and BROADCASTING): the strategy's share of the sorted queues among the sorted client ids.
- POP (``allocate4Pop``): ``popShareQueueNum <= 0`` or ``>= |cids| - 1`` ⇒ every client pops every broker
  of the topic, one queue per broker with queue id -1 ("all queues of that broker"); otherwise, when
  ``|cids| <= |queues|``, the client's own share plus the shares of the ``popShareQueueNum`` clients after
  it in the sorted ring; with more clients than queues, exactly the one queue ``queues[index % |queues|]``.
- The table is persisted as ``config/messageRequestMode.json``:
  ``{"messageRequestModeMap": {topic: {group: {topic, consumerGroup, mode, popShareQueueNum}}}}``.
"""

from __future__ import annotations

import asyncio
import enum
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, TypeVar

from orbitmq.broker.locks import MessageQueue
from orbitmq.broker.persist import JsonConfigManager
from orbitmq.broker.topics import RETRY_GROUP_TOPIC_PREFIX
from orbitmq.core.clock import Clock
from orbitmq.core.errors import ProtocolError
from orbitmq.store.fileops import FileOps

__all__ = [
    "ALL_QUEUES",
    "STRATEGIES",
    "MessageRequestMode",
    "MessageRequestModeManager",
    "RequestModeSetting",
    "Strategy",
    "allocate_for_pop",
    "assign",
    "averagely",
    "averagely_by_circle",
    "changed_pop_assignments",
]

#: Queue id of a POP assignment that means "pop every queue of that broker".
ALL_QUEUES: Final = -1

Q = TypeVar("Q")
#: ``(group, cid, sorted queues, sorted cids) -> the cid's queues``; upstream ``AllocateMessageQueueStrategy``.
Strategy: TypeAlias = Callable[[str, str, Sequence[Q], Sequence[str]], list[Q]]


class MessageRequestMode(enum.Enum):
    PULL = "PULL"
    POP = "POP"


@dataclass(frozen=True, slots=True)
class RequestModeSetting:
    """Upstream ``SetMessageRequestModeRequestBody``: the request body of 401 and one entry of the file."""

    topic: str  # topic
    consumer_group: str  # consumerGroup
    mode: MessageRequestMode = MessageRequestMode.PULL  # mode
    pop_share_queue_num: int = 0  # popShareQueueNum

    def to_json(self) -> dict[str, Any]:
        return {
            "consumerGroup": self.consumer_group,
            "mode": self.mode.value,
            "popShareQueueNum": self.pop_share_queue_num,
            "topic": self.topic,
        }

    @classmethod
    def from_json(cls, obj: object) -> RequestModeSetting:
        """Parse a body; :class:`ProtocolError` names what is wrong (the handler answers SYSTEM_ERROR)."""
        if not isinstance(obj, dict):
            raise ProtocolError("message request mode must be a JSON object")
        topic, group = obj.get("topic"), obj.get("consumerGroup")
        if not isinstance(topic, str) or not topic or not isinstance(group, str) or not group:
            raise ProtocolError("message request mode needs a topic and a consumerGroup")
        raw_mode = obj.get("mode", "PULL")
        try:
            mode = MessageRequestMode(raw_mode)
        except ValueError:
            raise ProtocolError(f"unknown message request mode {raw_mode!r} (PULL or POP)") from None
        share = obj.get("popShareQueueNum", 0)
        if isinstance(share, bool) or not isinstance(share, int | str):
            raise ProtocolError(f"popShareQueueNum must be an integer, got {share!r}")
        try:
            share_num = int(share)
        except ValueError:
            raise ProtocolError(f"popShareQueueNum must be an integer, got {share!r}") from None
        return cls(topic, group, mode, share_num)


# -- allocation strategies (the two upstream's broker registers) ---------------------------------------------
def averagely(group: str, cid: str, queues: Sequence[Q], cids: Sequence[str]) -> list[Q]:
    """``AVG``: consecutive blocks; the first ``|queues| mod |cids|`` clients get one more."""
    if cid not in cids or not queues:
        return []
    n, m, i = len(queues), len(cids), list(cids).index(cid)
    rem = n % m
    size = 1 if n <= m else n // m + (1 if i < rem else 0)
    start = i * size if rem > 0 and i < rem else i * size + rem
    count = min(size, n - start)
    return list(queues[start : start + count]) if count > 0 else []


def averagely_by_circle(group: str, cid: str, queues: Sequence[Q], cids: Sequence[str]) -> list[Q]:
    """``AVG_BY_CIRCLE``: client i takes queues i, i+m, i+2m, ..."""
    if cid not in cids:
        return []
    return list(queues[list(cids).index(cid) :: len(cids)])


#: Strategy name (``AllocateMessageQueueStrategy.getName()``) → strategy.
STRATEGIES: Final[Mapping[str, Strategy[MessageQueue]]] = {
    "AVG": averagely,
    "AVG_BY_CIRCLE": averagely_by_circle,
}


def allocate_for_pop(
    strategy: Strategy[MessageQueue],
    group: str,
    cid: str,
    queues: Sequence[MessageQueue],
    cids: Sequence[str],
    pop_share_queue_num: int,
) -> list[MessageQueue]:
    """Upstream ``allocate4Pop`` over sorted ``queues`` and ``cids``: a list, one entry per queue taken
    (in the "every queue" case one ``ALL_QUEUES`` entry per queue, as upstream builds it; callers that
    need the wire set de-duplicate)."""
    if pop_share_queue_num <= 0 or pop_share_queue_num >= len(cids) - 1:
        return [MessageQueue(q.topic, q.broker_name, ALL_QUEUES) for q in queues]
    if len(cids) <= len(queues):
        result = strategy(group, cid, queues, cids)
        if cid in cids:
            index = list(cids).index(cid)
            for _ in range(pop_share_queue_num):
                index = (index + 1) % len(cids)
                result += strategy(group, cids[index], queues, cids)
        return result
    # More clients than queues: each client gets exactly one queue, so none is left idle.
    if cid not in cids or not queues:
        return []
    return [queues[list(cids).index(cid) % len(queues)]]


def assign(
    setting: RequestModeSetting,
    strategy: Strategy[MessageQueue],
    cid: str,
    queues: Iterable[MessageQueue],
    cids: Iterable[str],
) -> set[MessageQueue]:
    """The queues of ``setting.topic`` that ``cid`` gets (CLUSTERING, server load balancing on)."""
    mq_all, cid_all = sorted(set(queues)), sorted(set(cids))
    if setting.mode is MessageRequestMode.POP:
        return set(
            allocate_for_pop(
                strategy, setting.consumer_group, cid, mq_all, cid_all, setting.pop_share_queue_num
            )
        )
    return set(strategy(setting.consumer_group, cid, mq_all, cid_all))


def changed_pop_assignments(
    setting: RequestModeSetting,
    strategy: Strategy[MessageQueue],
    queues: Iterable[MessageQueue],
    old_cids: Iterable[str],
    new_cids: Iterable[str],
) -> list[str]:
    """The clients of ``new_cids`` whose POP assignment differs between the two memberships (sorted).

    A client that just joined counts as changed only if an earlier member with the same id had another
    assignment; a brand-new client asks for its assignment on its own when it starts.
    """
    if setting.mode is not MessageRequestMode.POP:
        return []
    mq_all, old, new = sorted(set(queues)), sorted(set(old_cids)), sorted(set(new_cids))
    if not mq_all or old == new:
        return []
    changed = []
    for cid in new:
        if cid not in old:
            continue
        before = assign(setting, strategy, cid, mq_all, old)
        if before != assign(setting, strategy, cid, mq_all, new):
            changed.append(cid)
    return changed


# -- the persisted table --------------------------------------------------------------------------------------
def is_retry_topic(topic: str) -> bool:
    return topic.startswith(RETRY_GROUP_TOPIC_PREFIX)


class MessageRequestModeManager(JsonConfigManager):
    """``config/messageRequestMode.json``: topic → group → :class:`RequestModeSetting`."""

    name = "messageRequestMode"

    def __init__(self, store_root: str, clock: Clock, file_ops: FileOps | None = None) -> None:
        super().__init__(os.path.join(store_root, "config", "messageRequestMode.json"), clock, file_ops)
        self._table: dict[str, dict[str, RequestModeSetting]] = {}
        self._persisting = asyncio.Lock()

    async def persist_async(self) -> None:
        """One write at a time: SET_MESSAGE_REQUEST_MODE persists before answering while the periodic
        persist service may be writing the same file."""
        async with self._persisting:
            await super().persist_async()

    def set_mode(self, setting: RequestModeSetting) -> RequestModeSetting | None:
        """Store ``setting``; the setting it replaced (None if there was none). Retry topics are the
        handler's to refuse."""
        with self._lock:
            groups = self._table.setdefault(setting.topic, {})
            previous = groups.get(setting.consumer_group)
            groups[setting.consumer_group] = setting
            if previous != setting:
                self._mark_changed()
            return previous

    def get_mode(self, topic: str, group: str) -> RequestModeSetting | None:
        """The stored setting, or None (the broker's default applies)."""
        return self._table.get(topic, {}).get(group)

    def effective(
        self, topic: str, group: str, default_mode: MessageRequestMode, default_share: int
    ) -> RequestModeSetting:
        """What QUERY_ASSIGNMENT uses: the stored setting, else PULL for retry topics, else the defaults."""
        stored = self.get_mode(topic, group)
        if stored is not None:
            return stored
        if is_retry_topic(topic) or default_mode is MessageRequestMode.PULL:
            return RequestModeSetting(topic, group, MessageRequestMode.PULL)
        return RequestModeSetting(topic, group, MessageRequestMode.POP, default_share)

    def group_modes(self, group: str) -> dict[str, RequestModeSetting]:
        """Every stored setting of ``group``, by topic."""
        with self._lock:
            return {t: groups[group] for t, groups in self._table.items() if group in groups}

    def table_json(self, group: str | None = None) -> dict[str, Any]:
        """``MessageRequestModeSerializeWrapper`` (the GET_ALL_MESSAGE_REQUEST_MODE body), optionally only
        the entries of one group."""
        with self._lock:
            table = {
                topic: {g: s.to_json() for g, s in sorted(groups.items()) if group is None or g == group}
                for topic, groups in sorted(self._table.items())
            }
        return {"messageRequestModeMap": {t: gs for t, gs in table.items() if gs}}

    def encode_obj(self) -> dict[str, Any]:
        return self.table_json()

    def decode_obj(self, obj: dict[str, Any]) -> None:
        raw = obj.get("messageRequestModeMap") or {}
        if not isinstance(raw, dict):
            raise ValueError("messageRequestModeMap must be an object")
        table: dict[str, dict[str, RequestModeSetting]] = {}
        for topic, groups in raw.items():
            if not isinstance(groups, dict):
                raise ValueError(f"modes of topic {topic!r} must be an object")
            for group, body in groups.items():
                try:
                    setting = RequestModeSetting.from_json(body)
                except ProtocolError as exc:
                    raise ValueError(f"{topic}/{group}: {exc}") from exc
                table.setdefault(str(topic), {})[str(group)] = setting
        self._table = table
