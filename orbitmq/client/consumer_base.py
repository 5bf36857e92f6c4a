"""What the push and lite-pull consumers share: group membership (heartbeats), the rebalance service,
the offset store and where a new queue starts (pop-and-storage.md S4).

Java timings: heartbeat right after start and every 30 s; rebalance every 20 s, at once on
NOTIFY_CONSUMER_IDS_CHANGED (code 40), and again after 1 s when a round could not take every queue it was
allocated (orderly locks held by a member that has not let go yet); offsets persisted every 5 s and on
shutdown. A subclass says what to do with the queues it is given (:meth:`ConsumerBase.update_queues`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence

import orjson

from orbitmq.client.allocate import AllocateStrategy, averagely
from orbitmq.client.instance import ClientInstance
from orbitmq.client.model import RETRY_PREFIX, ConsumeFromWhere, MessageModel, MessageQueue
from orbitmq.client.modes import ModeAwareRebalance
from orbitmq.client.offset_store import (
    LocalFileOffsetStore,
    OffsetStore,
    RemoteBrokerOffsetStore,
    local_offsets_path,
)
from orbitmq.client.periodic import Periodic
from orbitmq.client.pull import subscription_json
from orbitmq.core.errors import BrokerError, ClientError
from orbitmq.net import Connection
from orbitmq.protocol.codes import RequestCode
from orbitmq.protocol.command import RemotingCommand

__all__ = ["ConsumerBase"]

log = logging.getLogger("orbitmq.client")

#: A rebalance round that could not take all its queues is retried this much later (Java ``minInterval``).
REBALANCE_RETRY_S = 1.0


class ConsumerBase:
    #: ``CONSUME_PASSIVELY`` (push) or ``CONSUME_ACTIVELY`` (pull), as the heartbeat says it.
    consume_type = "CONSUME_PASSIVELY"
    #: Push consumers persist every ``persist_interval_s``; the lite pull consumer commits in ``poll``.
    persists_periodically = True

    def __init__(
        self,
        group: str,
        namesrv_addrs: Sequence[str] | str,
        *,
        message_model: MessageModel = MessageModel.CLUSTERING,
        consume_from_where: ConsumeFromWhere = ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
        consume_timestamp_ms: int | None = None,
        allocate: AllocateStrategy = averagely,
        offset_store_dir: str | os.PathLike[str] | None = None,
        rebalance_interval_s: float = 20.0,
        heartbeat_interval_s: float = 30.0,
        persist_interval_s: float = 5.0,
        instance_name: str | None = None,
        request_timeout_s: float = 3.0,
    ) -> None:
        self.group = group
        self.message_model = message_model
        self.instance = ClientInstance(
            namesrv_addrs, instance_name=instance_name, request_timeout_s=request_timeout_s
        )
        self.offset_store: OffsetStore
        if message_model is MessageModel.BROADCASTING:
            if offset_store_dir is None:
                raise ClientError(
                    "a BROADCASTING consumer keeps its offsets in a local file: pass offset_store_dir "
                    "(the Java client uses ~/.rocketmq_offsets)"
                )
            self.offset_store = LocalFileOffsetStore(
                local_offsets_path(offset_store_dir, group, instance_name)
            )
        else:
            self.offset_store = RemoteBrokerOffsetStore(self.instance, group)
        self.consume_from_where, self.allocate = consume_from_where, allocate
        self.consume_timestamp_ms = consume_timestamp_ms
        self.subscriptions: dict[str, str] = {}
        self.sub_version = int(time.time() * 1000)
        self.rebalance_service = Periodic(f"rebalance {group}", rebalance_interval_s, self._rebalance_round)
        self.heartbeat_service = Periodic(f"heartbeat {group}", heartbeat_interval_s, self._heartbeat_round)
        self.persist_service = Periodic(f"persist offsets {group}", persist_interval_s, self._persist_round)
        self.instance.dispatch.register(RequestCode.NOTIFY_CONSUMER_IDS_CHANGED, self._on_ids_changed)
        #: POP-aware rebalance (docs/pop-rebalance.md); None: every topic balanced here, as below.
        self.mode_rebalance: ModeAwareRebalance | None = None

    @property
    def client_id(self) -> str:
        return self.instance.client_id

    @property
    def clustering(self) -> bool:
        return self.message_model is MessageModel.CLUSTERING

    # -- lifecycle pieces -------------------------------------------------------------------------------
    async def _join(self) -> None:
        """Learn routes, heartbeat, take queues, then start the timers."""
        await self.offset_store.load()
        await self._learn_routes(refresh=False)
        await self.heartbeat()
        await self._learn_routes(refresh=True)  # a retry topic exists once the broker saw the heartbeat
        balanced = await self.rebalance()
        if not balanced:
            self.rebalance_service.first_delay_s = REBALANCE_RETRY_S
        for svc in self._services():
            await svc.start()

    async def _learn_routes(self, *, refresh: bool) -> None:
        """Routes of the subscribed topics. A failure is not fatal (as in the Java client): the rebalance
        and heartbeat timers ask again, and a round that could not route retries after 1 s."""
        for topic in self.subscriptions:
            try:
                await self.instance.route(topic, refresh=refresh)
            except (BrokerError, ClientError) as exc:
                log.info("%s: no route for %s yet: %s", self.group, topic, exc)

    def _services(self) -> list[Periodic]:
        services = [self.rebalance_service, self.heartbeat_service]
        return [*services, self.persist_service] if self.persists_periodically else services

    async def _leave(self) -> None:
        """Stop the timers (the caller persists offsets between this and :meth:`_unregister`)."""
        for svc in self._services():
            await svc.stop()

    async def _unregister(self) -> None:
        for addr in self.instance.all_broker_addrs():
            with contextlib.suppress(BrokerError, ClientError):
                await self.instance.request(
                    addr,
                    RequestCode.UNREGISTER_CLIENT,
                    {"clientID": self.client_id, "consumerGroup": self.group},
                )
        await self.instance.close()

    # -- heartbeat --------------------------------------------------------------------------------------
    async def heartbeat(self) -> None:
        if not self.subscriptions:
            return  # nothing to tell the brokers (a lite pull consumer with assigned queues)
        subs = [subscription_json(t, e, "TAG", self.sub_version) for t, e in self.subscriptions.items()]
        consumer = {"groupName": self.group, "consumeType": self.consume_type,
                    "messageModel": self.message_model.value, "consumeFromWhere": self.consume_from_where.value,
                    "subscriptionDataSet": subs, "unitMode": False}  # fmt: skip
        await self.instance.heartbeat({"consumerDataSet": [consumer], "producerDataSet": []})

    async def _heartbeat_round(self) -> None:
        await self.instance.refresh_routes()
        await self.heartbeat()

    async def _on_ids_changed(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand | None:
        self.rebalance_service.wakeup()
        return None

    # -- rebalance --------------------------------------------------------------------------------------
    async def _rebalance_round(self) -> float | None:
        return None if await self.rebalance() else REBALANCE_RETRY_S

    def request_rebalance(self) -> None:
        self.rebalance_service.wakeup()

    async def rebalance(self) -> bool:
        """One round over every subscribed topic; False when some topic could not take all it was given."""
        if self.mode_rebalance is not None:
            return await self.mode_rebalance.rebalance()
        balanced = True
        for topic in list(self.subscriptions):
            try:
                mine = await self.allocated_queues(topic)
            except (BrokerError, ClientError) as exc:
                log.info("%s: rebalance of %s skipped: %s", self.group, topic, exc)
                balanced = False
                continue
            if mine is not None and not await self.update_queues(topic, mine):
                balanced = False
        return balanced

    async def allocated_queues(self, topic: str) -> set[MessageQueue] | None:
        """This member's share of ``topic`` (all of it when BROADCASTING); None when the topic has no
        readable queue yet."""
        route = self.instance.routes.get(topic) or await self.instance.route(topic)
        all_queues = sorted(route.subscribe_queues)
        if not all_queues:
            return None
        if not self.clustering:
            return set(all_queues)
        last: Exception | None = None
        for addr in route.master_addrs():
            try:
                resp = await self.instance.request(
                    addr, RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": self.group}
                )
                cids = sorted(orjson.loads(resp.body_bytes()).get("consumerIdList") or [])
                return set(self.allocate(self.group, self.client_id, all_queues, cids))
            except (BrokerError, ClientError) as exc:
                last = exc
        raise ClientError(f"no broker of {topic!r} gave the member list of {self.group}: {last}")

    async def update_queues(self, topic: str, mine: set[MessageQueue]) -> bool:
        """Drop the queues of ``topic`` no longer given to us, take the new ones; False if some could not be
        taken this round."""
        raise NotImplementedError

    async def start_offset(self, mq: MessageQueue) -> int:
        """RocketMQ's ``computePullFromWhere``: the stored offset if any, else per ``consume_from_where``."""
        stored = await self.offset_store.fetch(mq)
        if stored is not None:
            return stored
        retry = mq.topic.startswith(RETRY_PREFIX)
        where = self.consume_from_where
        if where is ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET or (
            retry and where is ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET
        ):
            return 0
        addr = self.instance.broker_addr(mq.broker_name)
        fields: dict[str, object] = {"topic": mq.topic, "queueId": mq.queue_id}
        if where is ConsumeFromWhere.CONSUME_FROM_TIMESTAMP and not retry:
            fields["timestamp"] = self.consume_timestamp_ms or int(time.time() * 1000) - 1_800_000
            resp = await self.instance.request(addr, RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, fields)
        else:
            resp = await self.instance.request(addr, RequestCode.GET_MAX_OFFSET, fields)
        return int(resp.ext_fields["offset"])

    async def _persist_round(self) -> None:
        await self.persist_offsets()

    async def persist_offsets(self) -> None:
        raise NotImplementedError
