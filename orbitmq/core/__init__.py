"""Model types, clock, errors, limits, atomic file writes and the Service lifecycle (standard library
only)."""

from orbitmq.core.clock import Clock, FakeClock, RealClock
from orbitmq.core.errors import BrokerError, ClientError, ConfigError, OrbitError, ProtocolError, StoreError
from orbitmq.core.service import IllegalTransition, Service, ServiceGroup, ServiceState

__all__ = [
    "BrokerError",
    "ClientError",
    "Clock",
    "ConfigError",
    "FakeClock",
    "IllegalTransition",
    "OrbitError",
    "ProtocolError",
    "RealClock",
    "Service",
    "ServiceGroup",
    "ServiceState",
    "StoreError",
]
