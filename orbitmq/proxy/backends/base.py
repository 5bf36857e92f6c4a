"""The one internal API both backends offer: topic routes and "send this remoting request to broker X".

Everything the gRPC service does is translated into remoting requests (SEND_MESSAGE_V2, POP_MESSAGE,
NOTIFICATION, ACK_MESSAGE, ...) by shared code in :mod:`orbitmq.proxy.messaging`, so the two backends only
differ in how a request reaches a broker: over the network to the brokers of a NameServer cluster
(:mod:`.cluster`) or straight into an in-process broker's handler table (:mod:`.local`). Requests a broker
sends to the proxy (CHECK_TRANSACTION_STATE for a producer group the proxy registered) arrive at
:attr:`Backend.dispatch` in both modes.
"""

from __future__ import annotations

import abc

from orbitmq.client.routing import TopicRoute
from orbitmq.net import DispatchTable
from orbitmq.protocol.command import RemotingCommand

__all__ = ["Backend"]


class Backend(abc.ABC):
    #: "local" or "cluster" (logs, metrics labels).
    kind: str = ""

    def __init__(self) -> None:
        #: Handlers for requests brokers send to the proxy (filled by the messaging layer).
        self.dispatch = DispatchTable()

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect what needs connecting; called once before the first request."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Release connections; requests after this fail."""

    @abc.abstractmethod
    async def route(self, topic: str, *, refresh: bool = False) -> TopicRoute:
        """The topic's route (brokers, queues, permissions). BrokerError(TOPIC_NOT_EXIST) when unknown."""

    @abc.abstractmethod
    async def invoke(self, broker_name: str, cmd: RemotingCommand, timeout_s: float) -> RemotingCommand:
        """Send ``cmd`` to the master of ``broker_name`` and return its response (any code).

        ClientError when the broker is unknown or unreachable or the timeout passes."""

    @abc.abstractmethod
    def broker_names(self) -> list[str]:
        """Brokers this backend knows of now (for registrations sent to every broker)."""

    @abc.abstractmethod
    def broker_name_of(self, addr: str) -> str | None:
        """The name of the broker whose master listens on ``addr`` (``ip:port``), if known."""
