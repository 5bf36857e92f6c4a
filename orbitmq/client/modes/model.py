"""The values of request-mode tracking: a topic's mode, the rebalance policies, and the POP retry topic
names (see :mod:`orbitmq.client.modes`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from orbitmq.client.model import RETRY_PREFIX

__all__ = ["ALL_QUEUES", "PULL_MODE", "RebalancePolicy", "RequestMode", "TopicMode", "pop_retry_topics"]

#: Queue id of a POP assignment meaning "every queue of that broker".
ALL_QUEUES: Final = -1


class RebalancePolicy(enum.Enum):
    MIXED = "MIXED"
    BROKER = "BROKER"
    LOCAL = "LOCAL"


class RequestMode(enum.Enum):
    PULL = "PULL"
    POP = "POP"


@dataclass(frozen=True, slots=True)
class TopicMode:
    mode: RequestMode
    pop_share_queue_num: int = 0

    @property
    def pop(self) -> bool:
        return self.mode is RequestMode.POP


PULL_MODE: Final = TopicMode(RequestMode.PULL)


def pop_retry_topics(group: str, topic: str) -> tuple[str, str]:
    """The two names a broker may give the POP retry topic of (group, topic): V1 ``%RETRY%g_t`` (the
    default) and V2 ``%RETRY%g+t``. Leftovers of a POP period are drained from them by pull."""
    return f"{RETRY_PREFIX}{group}_{topic}", f"{RETRY_PREFIX}{group}+{topic}"
