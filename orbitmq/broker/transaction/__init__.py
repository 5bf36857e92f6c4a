"""Transactional messages: half messages, END_TRANSACTION, back-checks (upstream's design, see
``docs/message-types.md``).

- :mod:`~orbitmq.broker.transaction.message`: how half, committed, renewed and op records are built (pure);
- :mod:`~orbitmq.broker.transaction.state`: the transaction state machine and the table of live halves;
- :mod:`~orbitmq.broker.transaction.service`: the service the send and END_TRANSACTION handlers call.
"""

from orbitmq.broker.transaction.message import CID_SYS_RMQ_TRANS, is_half_message
from orbitmq.broker.transaction.service import (
    EndOutcome,
    EndTransactionRequest,
    TransactionalMessageService,
    TransactionStats,
)
from orbitmq.broker.transaction.state import HalfRef, TransactionTable, TxEvent, TxState, transition

__all__ = [
    "CID_SYS_RMQ_TRANS",
    "EndOutcome",
    "EndTransactionRequest",
    "HalfRef",
    "TransactionStats",
    "TransactionTable",
    "TransactionalMessageService",
    "TxEvent",
    "TxState",
    "is_half_message",
    "transition",
]
