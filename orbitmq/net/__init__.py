"""Asyncio remoting server and client: connections, opaque → future matching, the dispatch table."""

from orbitmq.net.client import RemotingClient, parse_addr
from orbitmq.net.connection import CloseCallback, Connection, NetCounters
from orbitmq.net.dispatch import DispatchTable, RequestHandler, handle_request
from orbitmq.net.server import RemotingServer, ServerConfig

__all__ = [
    "CloseCallback",
    "Connection",
    "DispatchTable",
    "NetCounters",
    "RemotingClient",
    "RemotingServer",
    "RequestHandler",
    "ServerConfig",
    "handle_request",
    "parse_addr",
]
