"""The Broker: message store, request handlers, long polling, delay delivery, NameServer registration.

``BrokerApp(BrokerConfig(...), StoreConfig(...))`` runs one; see :mod:`orbitmq.broker.app`.
"""

from orbitmq.broker.app import BrokerApp
from orbitmq.broker.config import BrokerConfig

__all__ = ["BrokerApp", "BrokerConfig"]
