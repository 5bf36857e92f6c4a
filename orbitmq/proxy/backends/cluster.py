"""Cluster mode: routes from the NameServers, remoting requests to the brokers' masters.

One :class:`ClientInstance` (one connection per broker, requests multiplexed by opaque) carries every
client's traffic; brokers reach the proxy over the same connections (CHECK_TRANSACTION_STATE), which land
in :attr:`Backend.dispatch`. Routes are cached and fetched again once older than
``topicRouteServiceCacheRefreshSeconds``, or at once when a caller asks for a refresh.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from orbitmq.client.instance import ClientInstance
from orbitmq.client.routing import TopicRoute
from orbitmq.core.errors import ClientError
from orbitmq.protocol.command import RemotingCommand
from orbitmq.proxy.backends.base import Backend

__all__ = ["ClusterBackend"]


class ClusterBackend(Backend):
    kind = "cluster"

    def __init__(
        self, namesrv_addrs: Sequence[str], *, route_refresh_s: float = 20.0, instance_name: str | None = None
    ) -> None:
        super().__init__()
        if not namesrv_addrs:
            raise ClientError("cluster mode needs at least one NameServer address (namesrvAddr)")
        self.instance = ClientInstance(list(namesrv_addrs), instance_name=instance_name)
        self.instance.dispatch = self.dispatch
        self.instance.remoting.dispatch = self.dispatch
        self.route_refresh_s = route_refresh_s
        self._fetched: dict[str, float] = {}

    async def stop(self) -> None:
        await self.instance.close()

    async def route(self, topic: str, *, refresh: bool = False) -> TopicRoute:
        now = time.monotonic()
        stale = now - self._fetched.get(topic, -1e18) >= self.route_refresh_s
        route = await self.instance.route(topic, refresh=refresh or stale)
        if refresh or stale:
            self._fetched[topic] = now
        return route

    async def invoke(self, broker_name: str, cmd: RemotingCommand, timeout_s: float) -> RemotingCommand:
        addr = self.instance.broker_addr(broker_name)
        return await self.instance.remoting.invoke(addr, cmd, timeout_s)

    def broker_names(self) -> list[str]:
        return sorted({name for r in self.instance.routes.values() for name in r.broker_addrs})

    def broker_name_of(self, addr: str) -> str | None:
        for route in self.instance.routes.values():
            for name, addrs in route.broker_addrs.items():
                if addrs.get(0) == addr:
                    return name
        return None
