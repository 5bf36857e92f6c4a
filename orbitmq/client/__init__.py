"""The native asyncio RocketMQ remoting SDK: Producer, PushConsumer, allocation strategies, routing."""

from orbitmq.client.consumer import PushConsumer
from orbitmq.client.model import (
    ConsumeFromWhere,
    Message,
    MessageExt,
    MessageModel,
    MessageQueue,
    SendResult,
    SendStatus,
)
from orbitmq.client.producer import Producer

__all__ = [
    "ConsumeFromWhere",
    "Message",
    "MessageExt",
    "MessageModel",
    "MessageQueue",
    "Producer",
    "PushConsumer",
    "SendResult",
    "SendStatus",
]
