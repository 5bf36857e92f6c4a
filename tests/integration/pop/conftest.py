"""Pop tests run a real broker (tests/integration/broker/conftest.py) and speak the pop family the way the
Java client does: headers from :mod:`orbitmq.protocol.pop`, receipt handles rebuilt from the response's
offset-info strings with :func:`~orbitmq.protocol.pop.receipt_handles`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from orbitmq.core.clock import FakeClock
from orbitmq.net import RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.pop import (
    AckMessageRequestHeader,
    BatchAck,
    BatchAckMessageRequestBody,
    ChangeInvisibleTimeRequestHeader,
    ChangeInvisibleTimeResponseHeader,
    ExtraInfo,
    PopMessageRequestHeader,
    PopMessageResponseHeader,
    PoppedMessage,
    receipt_handles,
)
from orbitmq.protocol.record import MessageRecord, Prop, decode_records
from tests.integration.broker.conftest import Cluster, T, cluster, make_cluster, until

__all__ = ["Cluster", "PopMsg", "Popped", "cluster", "make_cluster", "until"]


@dataclass
class PopMsg:
    record: MessageRecord
    handle: str
    order_count: int

    @property
    def extra(self) -> ExtraInfo:
        return ExtraInfo.parse(self.handle)

    @property
    def body(self) -> bytes:
        return self.record.body


@dataclass
class Popped:
    response: RemotingCommand
    header: PopMessageResponseHeader
    messages: list[PopMsg]

    @property
    def code(self) -> int:
        return self.response.code

    @property
    def bodies(self) -> list[bytes]:
        return [m.body for m in self.messages]


async def pop(
    c: Cluster, topic: str, group: str = "G", *, queue_id: int = -1, max_nums: int = 32,
    invisible_ms: int = 60_000, poll_ms: int = 0, order: bool = False, attempt_id: str | None = None,
    exp: str | None = None, exp_type: str = "TAG", init_mode: int = 0, born: int | None = None, client: RemotingClient | None = None,
    timeout: float = T,
) -> Popped:  # fmt: skip
    clock = c.b.clock
    header = PopMessageRequestHeader(
        consumer_group=group, topic=topic, queue_id=queue_id, max_msg_nums=max_nums, invisible_time=invisible_ms,
        poll_time=poll_ms, born_time=clock.now_ms() if born is None else born, init_mode=init_mode, exp=exp,
        exp_type=exp_type if exp else None, order=order, attempt_id=attempt_id,
    )  # fmt: skip
    request = RemotingCommand.request(RequestCode.POP_MESSAGE, header.to_fields())
    response = await (client or c.client).invoke(c.b.address, request, timeout)
    resp_header = PopMessageResponseHeader.from_command(response)
    if response.code != ResponseCode.SUCCESS:
        return Popped(response, resp_header, [])
    records = decode_records(response.body_bytes())
    views = [
        PoppedMessage(r.topic, r.queue_id, r.queue_offset, r.properties.get(Prop.POP_CK)) for r in records
    ]
    handles = receipt_handles(resp_header, views, c.b.config.broker_name)
    return Popped(
        response, resp_header, [PopMsg(r, h, n) for r, (h, n) in zip(records, handles, strict=True)]
    )


async def ack(
    c: Cluster, topic: str, msg: PopMsg | str, group: str = "G", *, offset: int | None = None
) -> int:
    handle = msg if isinstance(msg, str) else msg.handle
    extra = ExtraInfo.parse(handle)
    header = AckMessageRequestHeader(
        group, topic, extra.queue_id, handle, extra.queue_offset if offset is None else offset
    )
    r = await c.client.invoke(
        c.b.address, RemotingCommand.request(RequestCode.ACK_MESSAGE, header.to_fields()), T
    )
    return r.code


async def batch_ack(c: Cluster, topic: str, msgs: list[PopMsg], group: str = "G") -> int:
    """One BatchAck per checkpoint (start offset, queue, kind), bits relative to its start offset."""
    by_ck: dict[tuple[int, int, str, int], list[ExtraInfo]] = {}
    for m in msgs:
        e = m.extra
        by_ck.setdefault((e.ck_offset, e.queue_id, e.retry_kind, e.pop_time), []).append(e)
    acks = tuple(
        BatchAck(group, topic, kind, so, q, es[0].revive_qid, pt, es[0].invisible_time,
                 tuple(sorted(e.queue_offset - so for e in es if e.queue_offset is not None)))
        for (so, q, kind, pt), es in by_ck.items()
    )  # fmt: skip
    body = BatchAckMessageRequestBody(c.b.config.broker_name, acks).encode()
    r = await c.client.invoke(
        c.b.address, RemotingCommand.request(RequestCode.BATCH_ACK_MESSAGE, body=body), T
    )
    return r.code


async def change_invisible(
    c: Cluster, topic: str, msg: PopMsg | str, invisible_ms: int, group: str = "G"
) -> tuple[int, str | None]:
    """(code, new handle)."""
    handle = msg if isinstance(msg, str) else msg.handle
    extra = ExtraInfo.parse(handle)
    assert extra.queue_offset is not None
    header = ChangeInvisibleTimeRequestHeader(
        group, topic, extra.queue_id, handle, extra.queue_offset, invisible_ms
    )
    request = RemotingCommand.request(RequestCode.CHANGE_MESSAGE_INVISIBLETIME, header.to_fields())
    r = await c.client.invoke(c.b.address, request, T)
    if r.code != ResponseCode.SUCCESS:
        return r.code, None
    new = ChangeInvisibleTimeResponseHeader.from_command(r).new_handle(extra, extra.queue_offset)
    return r.code, new.encode()


async def send_many(c: Cluster, topic: str, n: int, *, queue_id: int = 0, tags: str | None = None,
                    prefix: str = "m") -> None:  # fmt: skip
    for i in range(n):
        assert (await c.send(topic, f"{prefix}{i}".encode(), queue_id=queue_id, tags=tags)).code == 0


#: Broker settings every pop scenario of test_pop_modes.py runs under.
MODES = {
    "sync": {"append_ck_async": False, "append_ack_async": False},
    "async": {"append_ck_async": True, "append_ack_async": True},
    "merge": {"enable_pop_buffer_merge": True, "append_ck_async": False, "append_ack_async": False},
    "merge-async": {"enable_pop_buffer_merge": True, "append_ck_async": True, "append_ack_async": True},
}


@pytest.fixture(params=sorted(MODES))
async def moded(request: pytest.FixtureRequest, make_cluster: Callable[..., Awaitable[Cluster]]) -> Cluster:
    """A FakeClock broker in each CK/ACK mode: synchronous, asynchronous, merge buffer, both."""
    return await make_cluster(clock=FakeClock(), **MODES[request.param])


@pytest.fixture
async def fake(make_cluster: Callable[..., Awaitable[Cluster]]) -> Cluster:
    """A broker on a FakeClock: pop times, invisibility and revive are driven by ``clock.advance``."""
    return await make_cluster(clock=FakeClock())


async def revive(c: Cluster, advance_s: float = 0.0) -> int:
    """Move the fake clock, then run a revive round; the number of messages revived or dead-lettered
    meanwhile (the periodic revive task, woken by the clock, may be the one that did it)."""
    pop_service = c.b.pop
    assert pop_service is not None
    stats = pop_service.stats
    before = stats.revived_messages + stats.dead_lettered
    clock = c.b.clock
    if advance_s:
        assert isinstance(clock, FakeClock)
        await clock.advance(advance_s)
    pop_service.checkpoints.buffer.scan()  # the buffer's own task may not have run yet after the jump
    await pop_service.revive.revive_once()
    return stats.revived_messages + stats.dead_lettered - before
