"""One PULL_MESSAGE (11) as the consumers use it, and its result (remoting-protocol.md §6).

The pull carries the subscription (sysFlag SUBSCRIPTION), so the broker does not depend on having seen a
heartbeat first (LitePullConsumer in assign mode never sends one). Tags are re-checked client-side, as the
Java client does after the broker's hash-code filter; filtered messages are simply not returned, and the
result's ``next_begin_offset`` moves past them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from orbitmq.client.instance import ClientInstance
from orbitmq.client.model import MessageExt, MessageQueue, message_ext_from_record
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.record import decode_records, java_string_hash

__all__ = ["PullResult", "PullStatus", "pull", "subscription_json", "tags_of"]

FLAG_COMMIT_OFFSET = 0x1
FLAG_SUSPEND = 0x2
FLAG_SUBSCRIPTION = 0x4

_PULL_OK = (
    ResponseCode.SUCCESS,
    ResponseCode.PULL_NOT_FOUND,
    ResponseCode.PULL_RETRY_IMMEDIATELY,
    ResponseCode.PULL_OFFSET_MOVED,
)


class PullStatus(enum.Enum):
    FOUND = "FOUND"
    NO_NEW_MSG = "NO_NEW_MSG"
    NO_MATCHED_MSG = "NO_MATCHED_MSG"
    OFFSET_ILLEGAL = "OFFSET_ILLEGAL"


@dataclass(frozen=True, slots=True)
class PullResult:
    status: PullStatus
    next_begin_offset: int
    min_offset: int
    max_offset: int
    messages: list[MessageExt]


def tags_of(expression: str) -> frozenset[str]:
    """``"A || B"`` → {A, B}; ``"*"`` or empty → the empty set (everything)."""
    expr = expression.strip()
    if not expr or expr == "*":
        return frozenset()
    return frozenset(t.strip() for t in expr.split("||") if t.strip())


def subscription_json(
    topic: str, expression: str, expression_type: str = "TAG", sub_version: int = 0
) -> dict[str, Any]:
    """A heartbeat's ``SubscriptionData`` for ``topic``: tags and their Java hash codes for a TAG expression,
    the expression alone for SQL92."""
    tags = sorted(tags_of(expression)) if expression_type == "TAG" else []
    return {"topic": topic, "subString": expression.strip() or "*", "tagsSet": tags,
            "codeSet": [java_string_hash(t) for t in tags], "subVersion": sub_version, "classFilterMode": False,
            "expressionType": expression_type}  # fmt: skip


async def pull(
    instance: ClientInstance,
    group: str,
    mq: MessageQueue,
    offset: int,
    max_nums: int,
    *,
    expression: str = "*",
    sub_version: int = 0,
    commit_offset: int | None = None,
    suspend_s: float = 0.0,
) -> PullResult:
    """Pull from ``offset``; with ``suspend_s`` > 0 the broker holds the request until a message arrives
    or the time is up. ``commit_offset`` piggy-backs a commit of the group's offset (clustering)."""
    sys_flag = FLAG_SUBSCRIPTION | (FLAG_SUSPEND if suspend_s > 0 else 0)
    if commit_offset is not None and commit_offset > 0:
        sys_flag |= FLAG_COMMIT_OFFSET
    fields = {
        "consumerGroup": group, "topic": mq.topic, "queueId": mq.queue_id, "queueOffset": offset,
        "maxMsgNums": max_nums, "sysFlag": sys_flag, "commitOffset": commit_offset or 0,
        "suspendTimeoutMillis": int(suspend_s * 1000), "subscription": expression, "subVersion": sub_version,
    }  # fmt: skip
    resp = await instance.request(
        instance.broker_addr(mq.broker_name),
        RequestCode.PULL_MESSAGE,
        fields,
        timeout_s=suspend_s + instance.request_timeout_s + 2,
        ok=_PULL_OK,
    )
    ext = resp.ext_fields
    nxt = int(ext.get("nextBeginOffset", offset))
    lo, hi = int(ext.get("minOffset", 0)), int(ext.get("maxOffset", 0))
    if resp.code == ResponseCode.SUCCESS:
        wanted = tags_of(expression)
        msgs = [message_ext_from_record(r, mq.broker_name) for r in decode_records(resp.body_bytes())]
        if wanted:
            msgs = [m for m in msgs if m.tags in wanted]
        status = PullStatus.FOUND if msgs else PullStatus.NO_MATCHED_MSG
        return PullResult(status, nxt, lo, hi, msgs)
    status = {
        ResponseCode.PULL_NOT_FOUND: PullStatus.NO_NEW_MSG,
        ResponseCode.PULL_RETRY_IMMEDIATELY: PullStatus.NO_MATCHED_MSG,
        ResponseCode.PULL_OFFSET_MOVED: PullStatus.OFFSET_ILLEGAL,
    }[ResponseCode(resp.code)]
    return PullResult(status, nxt, lo, hi, [])
