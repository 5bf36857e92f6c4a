"""Request code → handler table, and the rules for turning one request into its response.

The rules are RocketMQ's (``NettyRemotingAbstract.processRequestCommand``): an unknown code is answered
with REQUEST_CODE_NOT_SUPPORTED, a failing handler with SYSTEM_ERROR and the error text as remark, and the
connection stays open in both cases: one bad request never costs a client its other in-flight requests.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias

from orbitmq.core.errors import BrokerError, ProtocolError
from orbitmq.protocol.codes import ResponseCode
from orbitmq.protocol.command import RemotingCommand

if TYPE_CHECKING:
    from orbitmq.net.connection import Connection

__all__ = ["DispatchTable", "RequestHandler", "handle_request"]

log = logging.getLogger("orbitmq.net")

#: A request handler: returns the response (its opaque and response flag are filled in for it), or None
#: for "no response" (e.g. a oneway request, or an answer that was already sent).
RequestHandler: TypeAlias = Callable[[RemotingCommand, "Connection"], Awaitable[RemotingCommand | None]]


class DispatchTable:
    """Maps request codes to handlers, with an optional default for every other code."""

    def __init__(self, handlers: dict[int, RequestHandler] | None = None) -> None:
        self._handlers: dict[int, RequestHandler] = {}
        self._default: RequestHandler | None = None
        for code, handler in (handlers or {}).items():
            self.register(code, handler)

    def register(self, code: int, handler: RequestHandler, *, replace: bool = False) -> None:
        """Route ``code`` to ``handler``. Registering a code twice is a wiring bug unless ``replace``."""
        code = int(code)
        if code in self._handlers and not replace:
            raise ValueError(f"request code {code} already has a handler")
        self._handlers[code] = handler

    def set_default(self, handler: RequestHandler | None) -> None:
        """Handler for every code without its own (None: answer REQUEST_CODE_NOT_SUPPORTED)."""
        self._default = handler

    def get(self, code: int) -> RequestHandler | None:
        return self._handlers.get(code, self._default)

    def __contains__(self, code: object) -> bool:
        return code in self._handlers

    def codes(self) -> list[int]:
        return sorted(self._handlers)


async def handle_request(
    dispatch: DispatchTable, cmd: RemotingCommand, conn: Connection
) -> RemotingCommand | None:
    """Run the handler for ``cmd`` and return the response to send (None = send nothing).

    A handler may raise :class:`BrokerError` to answer with that code and remark.
    """
    handler = dispatch.get(cmd.code)
    response: RemotingCommand | None
    if handler is None:
        log.debug("%r: request code %d not supported", conn, cmd.code)
        response = cmd.response(
            ResponseCode.REQUEST_CODE_NOT_SUPPORTED, f" request type {cmd.code} not supported"
        )
    else:
        try:
            response = await handler(cmd, conn)
        except BrokerError as exc:
            response = cmd.response(exc.code, exc.remark or None)
        except ProtocolError as exc:
            # A malformed or missing header field is the client's fault: tell it, keep the connection.
            log.warning("%r: bad request code %d opaque %d: %s", conn, cmd.code, cmd.opaque, exc)
            response = cmd.response(ResponseCode.SYSTEM_ERROR, str(exc))
        except Exception as exc:
            log.exception("%r: handler for request code %d failed", conn, cmd.code)
            response = cmd.response(ResponseCode.SYSTEM_ERROR, f"{type(exc).__name__}: {exc}")
    if cmd.is_oneway:
        return None
    return response
