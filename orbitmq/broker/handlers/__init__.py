"""The broker's remoting request handlers, one module per command family (RocketMQ's processors).

:func:`handler_table` builds the request code → handler table for a :class:`BrokerContext`.
"""

from __future__ import annotations

from orbitmq.broker.handlers.admin import AdminHandlers
from orbitmq.broker.handlers.clients import ClientHandlers
from orbitmq.broker.handlers.context import BrokerContext, ClientChannel, channel_of
from orbitmq.broker.handlers.offsets import OffsetHandlers
from orbitmq.broker.handlers.pop import PopHandlers
from orbitmq.broker.handlers.pull import PullHandlers
from orbitmq.broker.handlers.query import QueryHandlers
from orbitmq.broker.handlers.reset import ResetHandlers
from orbitmq.broker.handlers.runtime import RuntimeHandlers
from orbitmq.broker.handlers.send import SendHandlers
from orbitmq.broker.handlers.sendback import SendBackHandlers
from orbitmq.broker.handlers.transaction import TransactionHandlers
from orbitmq.broker.pop import PopService
from orbitmq.broker.transaction import TransactionalMessageService
from orbitmq.net.dispatch import RequestHandler

__all__ = ["BrokerContext", "ClientChannel", "channel_of", "handler_table"]


def handler_table(
    ctx: BrokerContext, pop: PopService | None = None, transactions: TransactionalMessageService | None = None
) -> dict[int, RequestHandler]:
    """Every request code the broker serves → its handler (the pop family when ``pop`` is given; half
    messages and END_TRANSACTION when ``transactions`` is)."""
    table: dict[int, RequestHandler] = {}
    families = (
        SendHandlers(ctx, transactions),
        PullHandlers(ctx),
        OffsetHandlers(ctx),
        ClientHandlers(ctx),
        SendBackHandlers(ctx),
        QueryHandlers(ctx),
        AdminHandlers(ctx),
        ResetHandlers(ctx),
        RuntimeHandlers(ctx),
    )
    tables = [family.table() for family in families]
    if pop is not None:
        tables.append(PopHandlers(ctx, pop).table())
    if transactions is not None:
        tables.append(TransactionHandlers(ctx, transactions).table())
    for family_table in tables:
        for code, handler in family_table.items():
            if code in table:
                raise ValueError(f"request code {code} has two handlers")
            table[int(code)] = handler
    return table
