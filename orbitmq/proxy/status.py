"""gRPC ``Status`` codes: the proxy's error type and the remoting → gRPC code table.

Every unary RPC reports errors in-band (gRPC OK, the response's ``status`` carries the code), as the Java
proxy does; both official clients read only that field. The remoting table extends the Java proxy's
(``ResponseBuilder``: SYSTEM_BUSY → TOO_MANY_REQUESTS, REQUEST_CODE_NOT_SUPPORTED → NOT_IMPLEMENTED,
SUBSCRIPTION_GROUP_NOT_EXIST → CONSUMER_GROUP_NOT_FOUND, TOPIC_NOT_EXIST → TOPIC_NOT_FOUND, broker timeouts →
PROXY_TIMEOUT, everything else INTERNAL_SERVER_ERROR) with the codes whose meaning is unambiguous.
"""

from __future__ import annotations

from typing import Any

from rocketmq.grpc_protocol import definition_pb2 as pb

from orbitmq.core.errors import BrokerError, ClientError, OrbitError
from orbitmq.protocol.codes import ResponseCode

__all__ = ["Code", "ProxyError", "code_for_remoting", "error_status", "ok_status", "status"]

#: The gRPC ``apache.rocketmq.v2.Code`` enum (values like ``Code.OK`` are ints).
Code: Any = pb.Code

_REMOTING_TO_GRPC: dict[int, int] = {
    ResponseCode.SUCCESS: pb.Code.OK,
    ResponseCode.SYSTEM_BUSY: pb.Code.TOO_MANY_REQUESTS,
    ResponseCode.POLLING_FULL: pb.Code.TOO_MANY_REQUESTS,
    ResponseCode.FLOW_CONTROL: pb.Code.TOO_MANY_REQUESTS,
    ResponseCode.REQUEST_CODE_NOT_SUPPORTED: pb.Code.NOT_IMPLEMENTED,
    ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST: pb.Code.CONSUMER_GROUP_NOT_FOUND,
    ResponseCode.TOPIC_NOT_EXIST: pb.Code.TOPIC_NOT_FOUND,
    ResponseCode.NO_PERMISSION: pb.Code.FORBIDDEN,
    ResponseCode.FLUSH_DISK_TIMEOUT: pb.Code.MASTER_PERSISTENCE_TIMEOUT,
    ResponseCode.FLUSH_SLAVE_TIMEOUT: pb.Code.SLAVE_PERSISTENCE_TIMEOUT,
    ResponseCode.SLAVE_NOT_AVAILABLE: pb.Code.HA_NOT_AVAILABLE,
    ResponseCode.SUBSCRIPTION_PARSE_FAILED: pb.Code.ILLEGAL_FILTER_EXPRESSION,
    ResponseCode.MESSAGE_ILLEGAL: pb.Code.BAD_REQUEST,
    ResponseCode.INVALID_PARAMETER: pb.Code.BAD_REQUEST,
}


class ProxyError(OrbitError):
    """A request the proxy answers with a gRPC ``Code`` (and a message for the client)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{pb.Code.Name(code)}: {message}")
        self.code = code
        self.message = message


def code_for_remoting(code: int) -> int:
    return int(_REMOTING_TO_GRPC.get(code, pb.Code.INTERNAL_SERVER_ERROR))


def status(code: int, message: str = "") -> Any:
    return pb.Status(code=code, message=message or pb.Code.Name(code))


def ok_status() -> Any:
    return pb.Status(code=pb.Code.OK, message="OK")


def error_status(exc: BaseException) -> Any:
    """The ``Status`` for an exception raised while serving a request."""
    if isinstance(exc, ProxyError):
        return status(exc.code, exc.message)
    if isinstance(exc, BrokerError):
        return status(code_for_remoting(exc.code), exc.remark or f"broker answered code {exc.code}")
    if isinstance(exc, ClientError):
        text = str(exc)
        code = pb.Code.PROXY_TIMEOUT if "timed out" in text else pb.Code.INTERNAL_SERVER_ERROR
        return status(code, text)
    return status(pb.Code.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")
