"""Message listeners of the push consumer and what their answers mean.

A concurrent listener is ``(message) -> result``; an orderly one is ``(message, context) -> result``;
either may be a plain function or a coroutine function. Results:

- consumed: ``None``, ``True``, ``ConsumeConcurrentlyStatus.CONSUME_SUCCESS``, ``ConsumeOrderlyStatus.SUCCESS``;
- not consumed: ``False``, ``RECONSUME_LATER``, ``SUSPEND_CURRENT_QUEUE_A_MOMENT``, or an exception.

Not consumed means, for a concurrent listener, "send it back to be delivered again later through
%RETRY%<group>" and, for an orderly one, "stop this queue for ``context.suspend_current_queue_time_ms``,
then hand me the same message again" (nothing behind it in that queue is delivered meanwhile).
"""

from __future__ import annotations

import enum
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias

from orbitmq.client.model import MessageExt, MessageQueue

__all__ = [
    "ConsumeConcurrentlyStatus",
    "ConsumeOrderlyContext",
    "ConsumeOrderlyStatus",
    "Listener",
    "ListenerResult",
    "OrderlyListener",
    "call_listener",
]

log = logging.getLogger("orbitmq.client")


class ConsumeConcurrentlyStatus(enum.Enum):
    CONSUME_SUCCESS = "CONSUME_SUCCESS"
    RECONSUME_LATER = "RECONSUME_LATER"


class ConsumeOrderlyStatus(enum.Enum):
    SUCCESS = "SUCCESS"
    SUSPEND_CURRENT_QUEUE_A_MOMENT = "SUSPEND_CURRENT_QUEUE_A_MOMENT"


@dataclass(slots=True)
class ConsumeOrderlyContext:
    """Given to an orderly listener with each message; it may change how long a suspension lasts."""

    mq: MessageQueue
    #: How long the queue waits after a failed attempt (the consumer's default when the listener leaves it).
    suspend_current_queue_time_ms: int


ListenerResult: TypeAlias = bool | ConsumeConcurrentlyStatus | ConsumeOrderlyStatus | None
Listener: TypeAlias = Callable[[MessageExt], Awaitable[ListenerResult] | ListenerResult]
OrderlyListener: TypeAlias = Callable[
    [MessageExt, ConsumeOrderlyContext], Awaitable[ListenerResult] | ListenerResult
]

_CONSUMED = (True, ConsumeConcurrentlyStatus.CONSUME_SUCCESS, ConsumeOrderlyStatus.SUCCESS)


async def call_listener(group: str, listener: Callable[..., object], msg: MessageExt, *args: object) -> bool:
    """Run the listener on ``msg``; True when it consumed the message. Exceptions are logged, not raised."""
    try:
        result = listener(msg, *args)
        if inspect.isawaitable(result):
            result = await result
    except Exception:
        log.exception("%s: listener failed on %s", group, msg.msg_id)
        return False
    return result is None or result in _CONSUMED
