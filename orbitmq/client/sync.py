"""A blocking facade over the asyncio SDK, for code that is not async (scripts, WSGI apps, thread pools).

Each facade object runs its asyncio client on an :class:`EventLoopThread` (its own, or one shared by
several objects) and blocks the calling thread until the result is there. Push-consumer listeners are
plain functions, run on a thread pool (``consume_thread_max`` threads, Java's consume executor), so a
slow listener never stalls heartbeats or pulls::

    from orbitmq.client import Message
    from orbitmq.client.sync import SyncProducer, SyncPushConsumer

    with SyncProducer("PG", "127.0.0.1:9876") as producer:
        producer.send(Message("TopicA", b"hello", tags="TagA"))

    consumer = SyncPushConsumer("CG", "127.0.0.1:9876")
    consumer.subscribe("TopicA", "TagA")
    consumer.register_listener(lambda msg: print(msg.body))
    consumer.start()
    ...
    consumer.shutdown()

Blocking calls made from inside the client's own loop (for example from an async callback) would
deadlock; they raise :class:`ClientError` instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, Protocol, Self, TypeVar

from orbitmq.client.consumer import PushConsumer
from orbitmq.client.listener import ConsumeOrderlyContext, ListenerResult
from orbitmq.client.lite_pull import LitePullConsumer
from orbitmq.client.model import Message, MessageExt, MessageQueue, SendResult
from orbitmq.client.producer import Producer
from orbitmq.client.routing import MessageQueueSelector, select_by_hash
from orbitmq.core.errors import ClientError

__all__ = ["EventLoopThread", "SyncLitePullConsumer", "SyncProducer", "SyncPushConsumer"]

T = TypeVar("T")


class EventLoopThread:
    """An asyncio event loop running in a daemon thread; :meth:`run` executes a coroutine on it and blocks."""

    def __init__(self, name: str = "orbitmq-client") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise ClientError("a blocking orbitmq call was made from the client's own event loop")
        if self.loop.is_closed():
            coro.close()
            raise ClientError("the client's event loop is closed")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout_s)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise ClientError(f"no answer within {timeout_s} s") from None

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class _AsyncClient(Protocol):
    async def start(self) -> None: ...

    async def shutdown(self) -> None: ...


class _Facade:
    def __init__(self, runtime: EventLoopThread | None) -> None:
        self._own_runtime = runtime is None
        self.runtime = runtime or EventLoopThread()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runtime.run(coro)

    def _call(self, fn: Callable[[], T]) -> T:
        """Run a plain method of the asyncio client on its loop's thread (its state is not thread-safe)."""

        async def call() -> T:
            return fn()

        return self._run(call())

    def _create(self, factory: Callable[[], T]) -> T:
        """Build the asyncio client on its loop (its events and locks belong there); no thread leaks if
        the arguments are refused."""
        try:
            return self._call(factory)
        except BaseException:
            self._release_runtime()
            raise

    def _release_runtime(self) -> None:
        if self._own_runtime:
            self.runtime.close()

    # -- lifecycle, shared by every facade: ``_client`` is the asyncio client it wraps --------------------
    _client: _AsyncClient

    def start(self) -> None:
        self._run(self._client.start())

    def shutdown(self) -> None:
        try:
            self._run(self._client.shutdown())
        finally:
            self._after_shutdown()
            self._release_runtime()

    def _after_shutdown(self) -> None:
        """Release what the facade itself holds (thread pools), after the client stopped."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


class SyncProducer(_Facade):
    """:class:`~orbitmq.client.Producer` with blocking methods; keyword arguments go to it unchanged."""

    def __init__(
        self,
        group: str,
        namesrv_addrs: Sequence[str] | str,
        *,
        runtime: EventLoopThread | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(runtime)
        self.producer = self._client = self._create(lambda: Producer(group, namesrv_addrs, **kw))

    def send(self, msg: Message, *, queue: MessageQueue | None = None) -> SendResult:
        return self._run(self.producer.send(msg, queue=queue))

    def send_orderly(
        self, msg: Message, key: Any, selector: MessageQueueSelector = select_by_hash
    ) -> SendResult:
        return self._run(self.producer.send_orderly(msg, key, selector))

    def send_oneway(self, msg: Message) -> None:
        self._run(self.producer.send_oneway(msg))

    def send_batch(self, msgs: Sequence[Message]) -> SendResult:
        return self._run(self.producer.send_batch(msgs))

    def send_async(self, msg: Message) -> concurrent.futures.Future[SendResult]:
        """Start a send and return at once; the future completes (on the client thread) with the result."""
        return asyncio.run_coroutine_threadsafe(self.producer.send(msg), self.runtime.loop)


class SyncPushConsumer(_Facade):
    """:class:`~orbitmq.client.PushConsumer` whose listener is a plain function run on a thread pool."""

    def __init__(
        self,
        group: str,
        namesrv_addrs: Sequence[str] | str,
        *,
        consume_thread_max: int = 20,
        runtime: EventLoopThread | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(runtime)
        kw.setdefault("consume_concurrency", consume_thread_max)
        self.consumer = self._client = self._create(lambda: PushConsumer(group, namesrv_addrs, **kw))
        self._pool = concurrent.futures.ThreadPoolExecutor(
            consume_thread_max, thread_name_prefix=f"consume-{group}"
        )

    def subscribe(self, topic: str, expression: str = "*") -> None:
        self.consumer.subscribe(topic, expression)

    def register_listener(self, listener: Callable[[MessageExt], ListenerResult]) -> None:
        async def on_pool(msg: MessageExt) -> ListenerResult:
            return await asyncio.get_running_loop().run_in_executor(self._pool, listener, msg)

        self.consumer.register_listener(on_pool)

    def register_orderly_listener(
        self, listener: Callable[[MessageExt, ConsumeOrderlyContext], ListenerResult]
    ) -> None:
        async def on_pool(msg: MessageExt, ctx: ConsumeOrderlyContext) -> ListenerResult:
            return await asyncio.get_running_loop().run_in_executor(self._pool, listener, msg, ctx)

        self.consumer.register_orderly_listener(on_pool)

    def _after_shutdown(self) -> None:
        self._pool.shutdown(wait=True)

    def assigned_queues(self) -> set[MessageQueue]:
        return self._call(self.consumer.assigned_queues)


class SyncLitePullConsumer(_Facade):
    """:class:`~orbitmq.client.LitePullConsumer` with blocking methods."""

    def __init__(
        self,
        group: str,
        namesrv_addrs: Sequence[str] | str,
        *,
        runtime: EventLoopThread | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(runtime)
        self.consumer = self._client = self._create(lambda: LitePullConsumer(group, namesrv_addrs, **kw))

    def subscribe(self, topic: str, expression: str = "*") -> None:
        self.consumer.subscribe(topic, expression)

    def assign(self, queues: Iterable[MessageQueue]) -> None:
        self._run(self.consumer.assign(list(queues)))

    def fetch_message_queues(self, topic: str) -> list[MessageQueue]:
        return self._run(self.consumer.fetch_message_queues(topic))

    def poll(self, timeout_s: float | None = None) -> list[MessageExt]:
        return self._run(self.consumer.poll(timeout_s))

    def seek(self, mq: MessageQueue, offset: int) -> None:
        self._run(self.consumer.seek(mq, offset))

    def seek_to_begin(self, mq: MessageQueue) -> None:
        self._run(self.consumer.seek_to_begin(mq))

    def seek_to_end(self, mq: MessageQueue) -> None:
        self._run(self.consumer.seek_to_end(mq))

    def commit(self, offsets: dict[MessageQueue, int] | None = None) -> None:
        self._run(self.consumer.commit(offsets))

    def committed(self, mq: MessageQueue) -> int | None:
        return self._run(self.consumer.committed(mq))

    def pause(self, queues: Iterable[MessageQueue]) -> None:
        mqs = list(queues)
        self._call(lambda: self.consumer.pause(mqs))

    def resume(self, queues: Iterable[MessageQueue]) -> None:
        mqs = list(queues)
        self._call(lambda: self.consumer.resume(mqs))

    def assignment(self) -> set[MessageQueue]:
        return self._call(self.consumer.assignment)
