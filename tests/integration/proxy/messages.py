"""Building requests the way the official clients do (field by field as observed on the wire)."""

from __future__ import annotations

import itertools
import time
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2
from rocketmq.grpc_protocol import definition_pb2 as pb
from rocketmq.grpc_protocol import service_pb2 as spb

_seq = itertools.count(1)


def message_id() -> str:
    return f"01AABBCCDDEEFF0001{int(time.time()):08X}{next(_seq):08X}"


def message(
    topic: str, body: bytes = b"hello", *, tag: str | None = None, keys: tuple[str, ...] = (),
    group: str | None = None, deliver_at_ms: int | None = None, mtype: int = pb.MessageType.NORMAL,
    props: dict[str, str] | None = None,
) -> Any:  # fmt: skip
    sp = pb.SystemProperties(
        message_id=message_id(), body_encoding=pb.Encoding.IDENTITY, message_type=mtype,
        born_timestamp=timestamp_pb2.Timestamp(seconds=int(time.time())), born_host="10.0.0.1",
    )  # fmt: skip
    if tag:
        sp.tag = tag
    sp.keys.extend(keys)
    if group:
        sp.message_group = group
        sp.message_type = pb.MessageType.FIFO
    if deliver_at_ms is not None:
        sp.delivery_timestamp.CopyFrom(
            timestamp_pb2.Timestamp(seconds=deliver_at_ms // 1000, nanos=deliver_at_ms % 1000 * 1_000_000)
        )
        sp.message_type = pb.MessageType.DELAY
    return pb.Message(
        topic=pb.Resource(name=topic), body=body, system_properties=sp, user_properties=props or {}
    )


def send(msg: Any) -> Any:
    return spb.SendMessageRequest(messages=[msg])


def seconds(s: float) -> Any:
    return duration_pb2.Duration(seconds=int(s), nanos=int(s % 1 * 1e9))


def receive(
    topic: str, group: str, *, batch: int = 16, invisible_s: float = 10, poll_s: float = 1,
    auto_renew: bool = False, broker: str = "", tag: str = "*",
) -> Any:  # fmt: skip
    mq = pb.MessageQueue(topic=pb.Resource(name=topic), id=0, broker=pb.Broker(name=broker, id=0))
    req = spb.ReceiveMessageRequest(
        group=pb.Resource(name=group), message_queue=mq, batch_size=batch, auto_renew=auto_renew,
        filter_expression=pb.FilterExpression(type=pb.FilterType.TAG, expression=tag),
        long_polling_timeout=seconds(poll_s),
    )  # fmt: skip
    if not auto_renew:
        req.invisible_duration.CopyFrom(seconds(invisible_s))
    return req


def consumer_settings(group: str, topic: str, ctype: int = pb.ClientType.SIMPLE_CONSUMER) -> Any:
    return spb.TelemetryCommand(
        settings=pb.Settings(
            client_type=ctype,
            request_timeout=seconds(3),
            subscription=pb.Subscription(
                group=pb.Resource(name=group),
                subscriptions=[
                    pb.SubscriptionEntry(
                        topic=pb.Resource(name=topic),
                        expression=pb.FilterExpression(type=pb.FilterType.TAG, expression="*"),
                    )
                ],
            ),
            user_agent=pb.UA(language=pb.Language.PYTHON, version="5.1.2"),
        )
    )


def producer_settings(*topics: str) -> Any:
    return spb.TelemetryCommand(
        settings=pb.Settings(
            client_type=pb.ClientType.PRODUCER,
            request_timeout=seconds(3),
            publishing=pb.Publishing(
                topics=[pb.Resource(name=t) for t in topics],
                max_body_size=128 * 1024 * 1024,
                validate_message_type=True,
            ),
            user_agent=pb.UA(language=pb.Language.PYTHON, version="5.1.2"),
        )
    )


def received_messages(responses: list[Any]) -> list[Any]:
    return [r.message for r in responses if r.WhichOneof("content") == "message"]


def received_status(responses: list[Any]) -> Any:
    return next(r.status for r in responses if r.WhichOneof("content") == "status")
