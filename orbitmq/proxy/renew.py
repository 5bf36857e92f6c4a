"""Auto-renew of push consumers' receipt handles (grpc-protocol.md §7.4).

A push consumer's receive (``auto_renew``) pops with ``renewSliceTimeMillis`` of invisibility; while its
listener runs, the proxy extends that slice by slice before it ends, for up to ``renewMaxTimeMillis`` since
the delivery. Ack / nack / DLQ of the message use the latest handle the proxy holds (the client only knows
the first one) and end the renewal. A client that goes away gets its messages back after
``invisibleTimeMillisWhenClear``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from orbitmq.core.clock import Clock
from orbitmq.core.errors import BrokerError, ClientError
from orbitmq.core.service import Service
from orbitmq.proxy.config import ProxyConfig
from orbitmq.proxy.counters import ProxyCounters
from orbitmq.proxy.receipt import ReceiptHandle
from orbitmq.proxy.status import Code, ProxyError

__all__ = ["HandleRegistry", "RenewRecord", "RenewService"]

log = logging.getLogger("orbitmq.proxy")

#: Handles under renewal, all clients together; beyond it new deliveries are not renewed (they simply
#: become visible again after their slice, like a handle whose renewal failed).
RENEW_HANDLES_MAX = 200_000

Key = tuple[str, str, str]  # (client id, group, message id)


@dataclass(slots=True)
class RenewRecord:
    client_id: str
    group: str
    topic: str
    message_id: str
    handle: ReceiptHandle
    consume_start_ms: int
    failures: int = 0
    #: Set while a renewal is on its way: an ack arriving meanwhile waits for it and uses the new handle.
    renewal: asyncio.Future[None] | None = None

    async def latest_handle(self) -> ReceiptHandle:
        if self.renewal is not None:
            await asyncio.shield(self.renewal)
        return self.handle

    @property
    def key(self) -> Key:
        return (self.client_id, self.group, self.message_id)


class HandleRegistry:
    def __init__(self, capacity: int = RENEW_HANDLES_MAX) -> None:
        self.capacity = capacity
        self._records: dict[Key, RenewRecord] = {}

    def add(self, record: RenewRecord) -> bool:
        if len(self._records) >= self.capacity and record.key not in self._records:
            return False
        self._records[record.key] = record
        return True

    def pop(self, key: Key) -> RenewRecord | None:
        return self._records.pop(key, None)

    def due(self, now_ms: int, ahead_ms: int) -> list[RenewRecord]:
        return [r for r in self._records.values() if r.handle.next_visible_ms - now_ms <= ahead_ms]

    def of_client(self, client_id: str) -> list[RenewRecord]:
        return [r for r in self._records.values() if r.client_id == client_id]

    def __len__(self) -> int:
        return len(self._records)


#: ``change(record, invisible_ms) -> new handle``: CHANGE_MESSAGE_INVISIBLETIME for a record's handle.
ChangeInvisible = Callable[[RenewRecord, int], Awaitable[ReceiptHandle]]


class RenewService(Service):
    def __init__(
        self,
        registry: HandleRegistry,
        change: ChangeInvisible,
        config: ProxyConfig,
        clock: Clock,
        counters: ProxyCounters,
    ) -> None:
        super().__init__("proxy receipt-handle renewal")
        self.registry, self.change, self.config, self.clock, self.counters = (
            registry, change, config, clock, counters
        )  # fmt: skip

    async def run(self) -> None:
        while not self.stopping:
            await self.wait_for_wakeup(self.config.renew_schedule_period_millis / 1000)
            if not self.stopping:
                await self.renew_due()

    async def renew_due(self) -> None:
        cfg = self.config
        now = self.clock.now_ms()
        for rec in self.registry.due(now, cfg.renew_ahead_time_millis):
            if now - rec.consume_start_ms >= cfg.renew_max_time_millis:
                # Long enough: let this slice run out, the message then comes back for another delivery.
                self.registry.pop(rec.key)
                continue
            rec.renewal = asyncio.get_running_loop().create_future()
            try:
                rec.handle = await self.change(rec, cfg.renew_slice_time_millis)
                rec.failures = 0
                self.counters.renewals += 1
            except (ProxyError, BrokerError, ClientError) as exc:
                rec.failures += 1
                invalid = isinstance(exc, ProxyError) and exc.code == Code.INVALID_RECEIPT_HANDLE
                self.counters.renewal_failures += 1
                if invalid or rec.failures > cfg.max_renew_retry_times:
                    log.info("stop renewing %s of %s: %s", rec.message_id, rec.group, exc)
                    self.registry.pop(rec.key)
            finally:
                rec.renewal.set_result(None)
                rec.renewal = None
