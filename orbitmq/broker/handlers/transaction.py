"""END_TRANSACTION (37) — upstream's ``EndTransactionProcessor`` over :class:`TransactionalMessageService`.

Header ``EndTransactionRequestHeader``: ``producerGroup``, ``tranStateTableOffset`` (the half message's
queue offset), ``commitLogOffset``, ``commitOrRollback`` (8 commit, 12 rollback, 0 unknown),
``fromTransactionCheck``, ``msgId``, ``transactionId``, ``topic``. Java producers send it oneway. An
unknown state gets no answer at all (as upstream); a failed commit is answered like a failed send.
"""

from __future__ import annotations

from orbitmq.broker.handlers.context import BrokerContext
from orbitmq.broker.handlers.send import put_status_response
from orbitmq.broker.transaction import EndTransactionRequest, TransactionalMessageService
from orbitmq.net.connection import Connection
from orbitmq.net.dispatch import RequestHandler
from orbitmq.protocol.codes import RequestCode
from orbitmq.protocol.command import RemotingCommand

__all__ = ["TransactionHandlers", "parse_end_transaction"]


def parse_end_transaction(cmd: RemotingCommand) -> EndTransactionRequest:
    """The header; ProtocolError (→ SYSTEM_ERROR) when a required field is missing or not a number."""
    return EndTransactionRequest(
        producer_group=cmd.str_field("producerGroup"),
        tran_state_table_offset=cmd.int_field("tranStateTableOffset"),
        commit_log_offset=cmd.int_field("commitLogOffset"),
        commit_or_rollback=cmd.int_field("commitOrRollback"),
        from_transaction_check=cmd.bool_field("fromTransactionCheck"),
        msg_id=cmd.ext_fields.get("msgId", ""),
        transaction_id=cmd.opt_str("transactionId"),
        topic=cmd.opt_str("topic"),
    )


class TransactionHandlers:
    def __init__(self, ctx: BrokerContext, transactions: TransactionalMessageService) -> None:
        self.ctx = ctx
        self.transactions = transactions

    def table(self) -> dict[int, RequestHandler]:
        return {RequestCode.END_TRANSACTION: self.end_transaction}

    async def end_transaction(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand | None:
        outcome = await self.transactions.end_transaction(parse_end_transaction(cmd))
        if not outcome.respond:
            return None
        if outcome.put is not None:
            return put_status_response(cmd, outcome.put, self.ctx.store.config.max_message_size, {})
        return cmd.response(outcome.code, outcome.remark)
