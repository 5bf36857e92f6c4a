"""Per-topic request modes on the client, and the mode-aware rebalance of a push consumer
(docs/pop-rebalance.md).

- :mod:`~orbitmq.client.modes.model`: a topic's mode (PULL or POP), the rebalance policies, the POP retry
  topic names;
- :mod:`~orbitmq.client.modes.wire`: the bodies of the mode table (402), the assignment (400) and the
  mode-change push (403);
- :mod:`~orbitmq.client.modes.cache`: :class:`RequestModeCache`, what this client believes each topic is
  (changed only by successful answers and pushes, never by a failure);
- :mod:`~orbitmq.client.modes.rebalance`: :class:`ModeAwareRebalance`, one consumer's rebalance under a
  :class:`RebalancePolicy`, including the 403 push handler and the periodic reconciliation.
"""

from orbitmq.client.modes.cache import RequestModeCache
from orbitmq.client.modes.model import ALL_QUEUES, RebalancePolicy, RequestMode, TopicMode, pop_retry_topics
from orbitmq.client.modes.rebalance import ModeAwareRebalance, PopAssignee, RebalanceCounters, RebalanceHost
from orbitmq.client.modes.wire import (
    Assignment,
    ModePush,
    parse_assignment,
    parse_mode_push,
    parse_mode_table,
)

__all__ = [
    "ALL_QUEUES",
    "Assignment",
    "ModeAwareRebalance",
    "ModePush",
    "PopAssignee",
    "RebalanceCounters",
    "RebalanceHost",
    "RebalancePolicy",
    "RequestMode",
    "RequestModeCache",
    "TopicMode",
    "parse_assignment",
    "parse_mode_push",
    "parse_mode_table",
    "pop_retry_topics",
]
