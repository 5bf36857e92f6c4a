"""The native asyncio RocketMQ remoting SDK: Producer, PushConsumer (concurrent or orderly, clustering or
broadcasting), LitePullConsumer, allocation strategies, routing; ``orbitmq.client.sync`` wraps them for
code that is not async."""

from orbitmq.client.consumer import PushConsumer
from orbitmq.client.listener import (
    ConsumeConcurrentlyStatus,
    ConsumeOrderlyContext,
    ConsumeOrderlyStatus,
    Listener,
    OrderlyListener,
)
from orbitmq.client.lite_pull import LitePullConsumer
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
    "ConsumeConcurrentlyStatus",
    "ConsumeFromWhere",
    "ConsumeOrderlyContext",
    "ConsumeOrderlyStatus",
    "Listener",
    "LitePullConsumer",
    "Message",
    "MessageExt",
    "MessageModel",
    "MessageQueue",
    "OrderlyListener",
    "Producer",
    "PushConsumer",
    "SendResult",
    "SendStatus",
]
