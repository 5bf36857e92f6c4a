"""The one small error hierarchy.

Expected outcomes (no message, offset moved, queue empty) are results, not exceptions. Exceptions are
for what a caller cannot treat as normal: malformed input, a failing disk, a refusing peer. Foreign
exceptions are translated where layers meet, with the cause chained (``raise StoreError(...) from e``).
"""

from __future__ import annotations

__all__ = ["BrokerError", "ClientError", "ConfigError", "OrbitError", "ProtocolError", "StoreError"]


class OrbitError(Exception):
    """Base of every error OrbitMQ raises on purpose."""


class ProtocolError(OrbitError):
    """Bytes that do not form a valid frame, header or record."""


class StoreError(OrbitError):
    """The store could not do what was asked (disk full, fsync failed, closed, corrupt segment)."""


class ConfigError(OrbitError):
    """A configuration key or value that is unknown or invalid; the message names the key."""


class BrokerError(OrbitError):
    """A request answered with a non-success RocketMQ response code.

    ``code`` is the RocketMQ response code (``protocol.codes.ResponseCode``); ``retriable`` says whether the
    same request may succeed if sent again (to this or another broker).
    """

    def __init__(self, code: int, remark: str = "", *, retriable: bool = False) -> None:
        super().__init__(f"[{code}] {remark}" if remark else f"[{code}]")
        self.code = code
        self.remark = remark
        self.retriable = retriable


class ClientError(OrbitError):
    """A client-side failure: no route, timeout, connection lost, invalid argument."""
