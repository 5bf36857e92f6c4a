"""The retrying revive-log writer (orbitmq.broker.pop.writer): never drops, bounds what is pending."""

from __future__ import annotations

import asyncio

from orbitmq.broker.pop.writer import ReviveLogWriter
from orbitmq.core.clock import FakeClock
from orbitmq.store.api import MessageToStore, PutResult, PutStatus


class FlakyStore:
    """put_message fails ``fail`` times, then stores; ``gate`` (when set) holds every put until released."""

    def __init__(self, fail: int = 0, status: PutStatus = PutStatus.SERVICE_NOT_AVAILABLE) -> None:
        self.fail = fail
        self.status = status
        self.stored: list[bytes] = []
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def put_message(self, msg: MessageToStore) -> PutResult:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail > 0:
            self.fail -= 1
            return PutResult(self.status)
        self.stored.append(msg.body)
        return PutResult(PutStatus.PUT_OK)


def msg(i: int) -> MessageToStore:
    return MessageToStore("rmq_sys_REVIVE_LOG_C", 0, str(i).encode())


async def test_failed_writes_are_retried_until_stored() -> None:
    clock = FakeClock()
    store = FlakyStore(fail=3)
    writer = ReviveLogWriter(store, clock)  # type: ignore[arg-type]
    await writer.start()
    fut = writer.submit(msg(1))
    for _ in range(10):
        await clock.advance(1)
        if fut.done():
            break
    assert fut.result().ok and store.stored == [b"1"]
    assert writer.retries == 3 and writer.stored == 1 and writer.pending == 0
    await writer.stop()


async def test_permanent_refusal_is_not_retried() -> None:
    store = FlakyStore(fail=1, status=PutStatus.MESSAGE_ILLEGAL)
    writer = ReviveLogWriter(store, FakeClock())  # type: ignore[arg-type]
    await writer.start()
    result = await writer.submit(msg(1))
    assert result.status is PutStatus.MESSAGE_ILLEGAL and writer.failed == 1 and store.calls == 1
    await writer.stop()


async def test_async_writes_are_bounded_and_fall_back_to_waiting() -> None:
    store = FlakyStore()
    store.gate = asyncio.Event()
    writer = ReviveLogWriter(store, FakeClock(), max_pending=2)  # type: ignore[arg-type]
    await writer.start()
    first = await writer.write(msg(1), asynchronous=True)
    second = await writer.write(msg(2), asynchronous=True)
    assert not first.done() and not second.done() and writer.pending == 2 and writer.fallbacks == 0
    third = asyncio.create_task(writer.write(msg(3), asynchronous=True))
    await asyncio.sleep(0.01)
    assert not third.done() and writer.fallbacks == 1  # back-pressure: the caller waits
    store.gate.set()
    await third
    assert store.stored == [b"1", b"2", b"3"]  # appended in submission order
    await writer.barrier()
    assert writer.pending == 0
    await writer.stop()


async def test_sync_writes_wait_and_barrier_waits_for_everything() -> None:
    store = FlakyStore()
    writer = ReviveLogWriter(store, FakeClock())  # type: ignore[arg-type]
    await writer.start()
    fut = await writer.write(msg(1), asynchronous=False)
    assert fut.done() and fut.result().ok
    pending = [writer.submit(msg(i)) for i in range(5)]
    await writer.barrier()
    assert all(p.done() for p in pending) and writer.stored == 6
    await writer.stop()
