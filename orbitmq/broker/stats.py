"""Broker traffic counters: messages and bytes in (sends) and out (deliveries), dead letters.

Plain dictionaries the handlers increment and the metrics exporter reads (RocketMQ's
``rocketmq_messages_in_total``, ``rocketmq_throughput_in_total``, ``..._out_total``,
``rocketmq_send_to_dlq_messages_total``). Keys are topics and groups the broker already knows, so the
tables grow only with its topic and group configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from orbitmq.broker.topics import DLQ_GROUP_TOPIC_PREFIX
from orbitmq.protocol.record import Prop

__all__ = ["BrokerStats", "message_type"]

_DELAY_PROPERTIES = (Prop.DELAY, Prop.TIMER_DELIVER_MS, Prop.TIMER_DELAY_SEC, Prop.TIMER_DELAY_MS)


def message_type(props: Mapping[str, str]) -> str:
    """RocketMQ's message-type label of a sent message: transaction, fifo, delay or normal."""
    if props.get(Prop.TRAN_MSG, "").lower() == "true":
        return "transaction"
    if Prop.SHARDING_KEY in props:
        return "fifo"
    if any(props.get(p, "0") not in ("", "0") for p in _DELAY_PROPERTIES):
        return "delay"
    return "normal"


@dataclass(slots=True)
class BrokerStats:
    #: (topic, message type) → messages / body bytes stored by producers' sends.
    messages_in: dict[tuple[str, str], int] = field(default_factory=dict)
    bytes_in: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (topic, consumer group) → messages / bytes handed to consumers (pull, pop).
    messages_out: dict[tuple[str, str], int] = field(default_factory=dict)
    bytes_out: dict[tuple[str, str], int] = field(default_factory=dict)
    #: consumer group → messages moved to ``%DLQ%<group>``.
    sent_to_dlq: dict[str, int] = field(default_factory=dict)

    def record_in(self, topic: str, kind: str, count: int, nbytes: int) -> None:
        key = (topic, kind)
        self.messages_in[key] = self.messages_in.get(key, 0) + count
        self.bytes_in[key] = self.bytes_in.get(key, 0) + nbytes
        if topic.startswith(DLQ_GROUP_TOPIC_PREFIX):  # a retry past its limit, sent as a send
            self.record_dlq(topic[len(DLQ_GROUP_TOPIC_PREFIX) :], count)

    def record_out(self, topic: str, group: str, count: int, nbytes: int) -> None:
        key = (topic, group)
        self.messages_out[key] = self.messages_out.get(key, 0) + count
        self.bytes_out[key] = self.bytes_out.get(key, 0) + nbytes

    def record_dlq(self, group: str, count: int = 1) -> None:
        self.sent_to_dlq[group] = self.sent_to_dlq.get(group, 0) + count
