"""POP consumption on the broker (pop-and-storage §1, docs/pop.md): checkpoints and acks in the revive log,
the ordered offset commit, revive to the pop retry topic and the DLQ, asynchronous CK/ACK writes.

Modules: :mod:`~orbitmq.broker.pop.records` (CK/ACK bodies), :mod:`~orbitmq.broker.pop.revive_state`
(revive matching, pure), :mod:`~orbitmq.broker.pop.inflight` (offset commit order),
:mod:`~orbitmq.broker.pop.writer` (retrying sync/async writer), :mod:`~orbitmq.broker.pop.popper`,
:mod:`~orbitmq.broker.pop.acker`, :mod:`~orbitmq.broker.pop.revive`, :mod:`~orbitmq.broker.pop.service`.
"""

from orbitmq.broker.pop.env import PopStats
from orbitmq.broker.pop.service import PopService

__all__ = ["PopService", "PopStats"]
