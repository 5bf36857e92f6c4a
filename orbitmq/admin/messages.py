"""Finding messages and sending a test message.

- by id: an offset message id (store host + CommitLog offset) of a broker of the cluster is read with
  VIEW_MESSAGE_BY_ID (33); any other id is taken as a client id (``UNIQ_KEY``) and looked up with
  QUERY_MESSAGE (12, ``_UNIQUE_KEY_QUERY=true``) on every broker of the given topic, as upstream's mqadmin does;
- by key: QUERY_MESSAGE on every broker of the topic (the index holds KEYS and UNIQ_KEY);
- by queue and offset: one PULL_MESSAGE (11) of that single message in the tools group ``TOOLS_CONSUMER``
  (upstream's admin group; created on first use where ``autoCreateSubscriptionGroup`` is on), without
  committing anything;
- send: the SDK's :class:`~orbitmq.client.producer.Producer` in the group ``TOOLS_PRODUCER``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from orbitmq.admin.base import AdminBase
from orbitmq.client.model import Message, MessageExt, MessageQueue, message_ext_from_record
from orbitmq.client.producer import Producer
from orbitmq.core.errors import BrokerError, ClientError, ProtocolError
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import decode_offset_msg_id, decode_records

__all__ = ["TOOLS_CONSUMER", "TOOLS_PRODUCER", "FoundMessage", "MessageAdmin", "SentMessage"]

TOOLS_CONSUMER: Final = "TOOLS_CONSUMER"
TOOLS_PRODUCER: Final = "TOOLS_PRODUCER"
_QUERY_MAX: Final = 32
_PULL_FLAGS: Final = 0x4  # subscription in the request; no commit, no suspend


@dataclass(frozen=True, slots=True)
class FoundMessage:
    broker_name: str
    message: MessageExt

    def to_json(self) -> dict[str, Any]:
        m = self.message
        out: dict[str, Any] = {
            "msgId": m.msg_id, "offsetMsgId": m.offset_msg_id, "topic": m.topic, "brokerName": self.broker_name,
            "queueId": m.queue_id, "queueOffset": m.queue_offset, "tags": m.tags, "keys": m.keys,
            "bornTimestamp": m.born_timestamp, "storeTimestamp": m.store_timestamp,
            "reconsumeTimes": m.reconsume_times, "properties": dict(m.properties),
        }  # fmt: skip
        try:
            out["body"] = m.body.decode("utf-8")
        except UnicodeDecodeError:
            out["bodyBase64"] = base64.b64encode(m.body).decode("ascii")
        return out


@dataclass(frozen=True, slots=True)
class SentMessage:
    msg_id: str
    offset_msg_id: str
    broker_name: str
    queue_id: int
    queue_offset: int
    status: str

    def to_json(self) -> dict[str, Any]:
        return {"msgId": self.msg_id, "offsetMsgId": self.offset_msg_id, "brokerName": self.broker_name,
                "queueId": self.queue_id, "queueOffset": self.queue_offset, "sendStatus": self.status}  # fmt: skip


class MessageAdmin(AdminBase):
    async def _decode(self, body: bytes, broker_name: str) -> list[FoundMessage]:
        return [
            FoundMessage(broker_name, message_ext_from_record(r, broker_name)) for r in decode_records(body)
        ]

    async def message_by_id(self, msg_id: str, topic: str | None = None) -> list[FoundMessage]:
        """The message(s) with this offset id or client id; ``topic`` is needed for a client id."""
        masters = await self.masters()
        try:
            host, port, phy = decode_offset_msg_id(msg_id.strip())
        except (ProtocolError, ValueError):
            host, port, phy = "", 0, 0
        for b in masters:
            if b.addr == f"{host}:{port}":
                response = await self._invoke(b.addr, RequestCode.VIEW_MESSAGE_BY_ID, {"offset": phy})
                found = await self._decode(response.body_bytes(), b.name)
                if found and (
                    topic is None or found[0].message.record_topic == topic or found[0].message.topic == topic
                ):
                    return found
        if topic is None:
            raise ClientError(
                f"{msg_id} is not an offset message id of a broker of this cluster; "
                "give the topic to look it up as a client message id (UNIQ_KEY)"
            )
        return await self._query(topic, msg_id, unique=True)

    async def messages_by_key(self, topic: str, key: str, max_num: int = _QUERY_MAX) -> list[FoundMessage]:
        return await self._query(topic, key, unique=False, max_num=max_num)

    async def _query(
        self, topic: str, key: str, *, unique: bool, max_num: int = _QUERY_MAX
    ) -> list[FoundMessage]:
        out: list[FoundMessage] = []
        fields = {"topic": topic, "key": key, "maxNum": max_num, "beginTimestamp": 0,
                  "endTimestamp": int(time.time() * 1000) + 60_000, "_UNIQUE_KEY_QUERY": unique or None}  # fmt: skip
        for broker, _ in await self.topic_masters(topic):
            try:
                response = await self._invoke(broker.addr, RequestCode.QUERY_MESSAGE, fields)
            except BrokerError as exc:
                if exc.code == ResponseCode.QUERY_NOT_FOUND:
                    continue
                raise
            out += await self._decode(response.body_bytes(), broker.name)
        if unique:  # an index hit on the key's hash may be another message: keep exact matches
            out = [f for f in out if f.message.msg_id == key or key in f.message.msg_id.split(",")]
        return out

    async def message_at(self, topic: str, broker_name: str, queue_id: int, offset: int) -> FoundMessage:
        """The message at ``offset`` of a queue; BrokerError(QUERY_NOT_FOUND) when none is stored there."""
        addr = await self.broker_addr(broker_name)
        fields = {"consumerGroup": TOOLS_CONSUMER, "topic": topic, "queueId": queue_id, "queueOffset": offset,
                  "maxMsgNums": 1, "sysFlag": _PULL_FLAGS, "commitOffset": 0, "suspendTimeoutMillis": 0,
                  "subscription": "*", "subVersion": 0}  # fmt: skip
        request = RemotingCommand.request(RequestCode.PULL_MESSAGE, {k: str(v) for k, v in fields.items()})
        response = await self.client.invoke(addr, request, self.timeout_s)
        if response.code == ResponseCode.SUCCESS:
            found = await self._decode(response.body_bytes(), broker_name)
            if found and found[0].message.queue_offset == offset:
                return found[0]
        if response.code not in (ResponseCode.SUCCESS, ResponseCode.PULL_NOT_FOUND, ResponseCode.PULL_OFFSET_MOVED,
                                 ResponseCode.PULL_RETRY_IMMEDIATELY):  # fmt: skip
            raise BrokerError(response.code, response.remark or "")
        low, high = response.ext_fields.get("minOffset", "?"), response.ext_fields.get("maxOffset", "?")
        raise BrokerError(
            ResponseCode.QUERY_NOT_FOUND,
            f"no message at offset {offset} of {topic} {broker_name} queue {queue_id} (queue holds [{low}-{high}))",
        )

    async def send_test_message(
        self,
        topic: str,
        body: bytes,
        *,
        tags: str | None = None,
        keys: list[str] | None = None,
        queue_id: int | None = None,
    ) -> SentMessage:
        """Send one message; to ``queue_id`` (the first broker's queue of that id) when given, else round robin."""
        producer = Producer(TOOLS_PRODUCER, self.namesrv_addrs, send_timeout_s=self.timeout_s)
        await producer.start()
        msg = Message(topic, body, tags=tags, keys=list(keys or []))
        try:
            if queue_id is None:
                result = await producer.send(msg)
            else:
                result = await producer.send_orderly(msg, queue_id, _queue_with_id)
        finally:
            await producer.shutdown()
        return SentMessage(result.msg_id, result.offset_msg_id, result.queue.broker_name, result.queue.queue_id,
                           result.queue_offset, result.status.name)  # fmt: skip


def _queue_with_id(queues: Sequence[MessageQueue], msg: Message, queue_id: int) -> MessageQueue:
    for mq in queues:
        if mq.queue_id == queue_id:
            return mq
    raise ClientError(f"topic {msg.topic!r} has no writable queue {queue_id}")
