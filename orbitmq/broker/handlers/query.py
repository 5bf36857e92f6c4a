"""VIEW_MESSAGE_BY_ID (33) and QUERY_MESSAGE (12) — RocketMQ's QueryMessageProcessor (remoting-protocol §2.6).

Both answer with message records in the stored layout (the pull body format). VIEW takes the CommitLog
offset decoded from an offset message id; QUERY looks a key (or, with ``_UNIQUE_KEY_QUERY=true``, a
``UNIQ_KEY``) up in the index within ``[beginTimestamp, endTimestamp]``.
"""

from __future__ import annotations

from orbitmq.broker.handlers.context import BrokerContext, java_fields
from orbitmq.core.errors import BrokerError
from orbitmq.net.connection import Connection
from orbitmq.net.dispatch import RequestHandler
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.record import MessageRecord, encode_record

__all__ = ["QueryHandlers", "record_bytes"]

#: Upstream ``defaultQueryMaxNum``: the most messages one query answers (unique-key queries always use it).
DEFAULT_QUERY_MAX_NUM = 32


def record_bytes(rec: MessageRecord) -> bytes:
    """``rec`` in the stored layout again (same fields, same checksum)."""
    return encode_record(
        topic=rec.topic,
        body=rec.body,
        properties=rec.properties,
        queue_id=rec.queue_id,
        flag=rec.flag,
        queue_offset=rec.queue_offset,
        physical_offset=rec.physical_offset,
        sys_flag=rec.sys_flag,
        born_timestamp=rec.born_timestamp,
        born_host=rec.born_host,
        store_timestamp=rec.store_timestamp,
        store_host=rec.store_host,
        reconsume_times=rec.reconsume_times,
        prepared_transaction_offset=rec.prepared_transaction_offset,
        crc=rec.body_crc,
    )


class QueryHandlers:
    def __init__(self, ctx: BrokerContext) -> None:
        self.ctx = ctx

    def table(self) -> dict[int, RequestHandler]:
        return {
            RequestCode.VIEW_MESSAGE_BY_ID: self.view_message_by_id,
            RequestCode.QUERY_MESSAGE: self.query_message,
        }

    async def view_message_by_id(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        phy = cmd.int_field("offset")
        rec = self.ctx.store.look_message_by_offset(phy)
        if rec is None:
            raise BrokerError(ResponseCode.SYSTEM_ERROR, f"can not find message by the offset, {phy}")
        return cmd.response(body=record_bytes(rec))

    async def query_message(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        topic, key = cmd.str_field("topic"), cmd.str_field("key")
        max_num = cmd.int_field("maxNum")
        begin, end = cmd.int_field("beginTimestamp"), cmd.int_field("endTimestamp")
        if cmd.bool_field("_UNIQUE_KEY_QUERY"):
            max_num = DEFAULT_QUERY_MAX_NUM
        max_num = max(1, min(max_num, DEFAULT_QUERY_MAX_NUM * 2))
        records = self.ctx.store.query_message(topic, key, max_num, begin, end)
        ext = java_fields(
            indexLastUpdateTimestamp=self.ctx.now_ms,
            indexLastUpdatePhyoffset=self.ctx.store.dispatched_offset,
        )
        if not records:
            return cmd.response(
                ResponseCode.QUERY_NOT_FOUND,
                "can not find message, maybe time range not correct",
                ext_fields=ext,
            )
        return cmd.response(ext_fields=ext, body=[record_bytes(r) for r in records])
