"""What this client believes each topic's request mode is (docs/pop-rebalance.md).

:class:`RequestModeCache` changes only through three transitions, each fed by a *successful* answer or a
push from a broker:

- :meth:`RequestModeCache.apply_table`: a GET_ALL_MESSAGE_REQUEST_MODE (402) answer (reconciliation);
- :meth:`RequestModeCache.apply_push`: a NOTIFY_MESSAGE_REQUEST_MODE_CHANGED (403) push;
- :meth:`RequestModeCache.apply_assignment`: the mode carried by a QUERY_ASSIGNMENT (400) answer.

A failed or timed-out request calls none of them, so it can never flip a topic (upstream #8686: a client
that classified topics by probing turned a POP topic into a locally balanced one on a network error and
consumed it twice). A topic whose mode is unknown is not consumed until an answer says what it is. An
answer that was on its way while a push arrived does not overwrite the push (each read carries the push
sequence number it started at).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from orbitmq.client.model import RETRY_PREFIX
from orbitmq.client.modes.model import PULL_MODE, TopicMode
from orbitmq.client.modes.wire import Assignment

__all__ = ["RequestModeCache"]


class RequestModeCache:
    """What this client believes each topic's mode is (absent = unknown). See the module docstring."""

    def __init__(self) -> None:
        self._modes: dict[str, TopicMode] = {}
        self._pushed_at: dict[str, int] = {}
        self._seq = 0
        #: Every change of a known topic's mode, as (topic, old, new) (tests and metrics read it).
        self.history: list[tuple[str, TopicMode | None, TopicMode]] = []
        self._share_known: set[str] = set()

    def get(self, topic: str) -> TopicMode | None:
        if topic.startswith(RETRY_PREFIX):
            return PULL_MODE  # retry topics are always pulled (upstream's rule, the broker refuses others)
        return self._modes.get(topic)

    def snapshot(self) -> dict[str, TopicMode]:
        return dict(self._modes)

    def share_known(self, topic: str) -> bool:
        """True when the share came from a table or a push (an assignment answer does not carry it)."""
        return topic in self._share_known

    def begin_read(self) -> int:
        """Call before sending a request whose answer will feed :meth:`apply_table`/:meth:`apply_assignment`."""
        return self._seq

    def _set(self, topic: str, mode: TopicMode) -> bool:
        old = self._modes.get(topic)
        if old == mode:
            return False
        self._modes[topic] = mode
        self.history.append((topic, old, mode))
        return True

    def apply_push(self, topic: str, mode: TopicMode) -> bool:
        """A broker pushed ``mode``; True if it changed anything."""
        self._seq += 1
        self._pushed_at[topic] = self._seq
        self._share_known.add(topic)
        return self._set(topic, mode)

    def _superseded(self, topic: str, token: int) -> bool:
        return self._pushed_at.get(topic, 0) > token

    def apply_table(
        self, token: int, topics: Iterable[str], modes: Mapping[str, TopicMode], default: TopicMode
    ) -> list[str]:
        """A successful mode table read (started at ``token``): every topic of ``topics`` takes its stored
        mode, or ``default``. Topics pushed since ``token`` keep the pushed mode. The topics that changed."""
        changed = []
        for topic in topics:
            if topic.startswith(RETRY_PREFIX) or self._superseded(topic, token):
                continue
            self._share_known.add(topic)
            if self._set(topic, modes.get(topic, default)):
                changed.append(topic)
        return changed

    def apply_assignment(self, token: int, topic: str, assignment: Assignment) -> bool:
        """The mode a successful QUERY_ASSIGNMENT answered with (it knows no share: the cached one is
        kept, else 0). Answers without queues, or overtaken by a push, change nothing."""
        if assignment.mode is None or topic.startswith(RETRY_PREFIX) or self._superseded(topic, token):
            return False
        known = self._modes.get(topic)
        if known is not None and known.mode is assignment.mode:
            return False
        share = known.pop_share_queue_num if known is not None else 0
        if known is None:
            self._share_known.discard(topic)
        return self._set(topic, TopicMode(assignment.mode, share))
