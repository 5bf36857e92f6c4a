"""The NameServer: broker registrations and topic routes (RocketMQ's namesrv).

``NamesrvApp(NamesrvConfig(port=0))`` runs one; the route table (:mod:`orbitmq.namesrv.routes`) is pure
state that the request handlers (:mod:`orbitmq.namesrv.handlers`) read and change.
"""

from orbitmq.namesrv.app import BrokerExpiryService, NamesrvApp
from orbitmq.namesrv.config import NamesrvConfig
from orbitmq.namesrv.kvconfig import KvConfigTable
from orbitmq.namesrv.routes import RouteTable

__all__ = ["BrokerExpiryService", "KvConfigTable", "NamesrvApp", "NamesrvConfig", "RouteTable"]
