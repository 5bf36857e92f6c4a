"""The shared client plumbing (RocketMQ's ``MQClientInstance``): one RemotingClient, the NameServer list,
the route cache, the client id, and request helpers that turn response codes into results or errors."""

from __future__ import annotations

import itertools
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

import orjson

from orbitmq.client.routing import TopicRoute, parse_topic_route
from orbitmq.core.errors import BrokerError, ClientError, ProtocolError
from orbitmq.net import Connection, DispatchTable, RemotingClient
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import Body, RemotingCommand
from orbitmq.protocol.record import MessageRecord, Prop, decode_records

__all__ = ["RETRIABLE_CODES", "ClientInstance", "TransactionChecker", "local_ip"]

#: Answers one CHECK_TRANSACTION_STATE: (request header fields, the half message, broker address).
TransactionChecker = Callable[[dict[str, str], MessageRecord, str], Awaitable[None]]

log = logging.getLogger("orbitmq.client")

#: Codes after which a send is retried on another queue/broker (remoting-protocol.md §2.4).
RETRIABLE_CODES = frozenset({1, 14, 16, 17, 204, 205})


def local_ip() -> str:
    """The address other hosts would see; loopback when there is no route (tests, sandboxes)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


class ClientInstance:
    def __init__(
        self,
        namesrv_addrs: Sequence[str] | str,
        *,
        instance_name: str | None = None,
        request_timeout_s: float = 3.0,
        client_ip: str | None = None,
    ) -> None:
        addrs = namesrv_addrs.split(";") if isinstance(namesrv_addrs, str) else list(namesrv_addrs)
        if not addrs:
            raise ClientError("at least one NameServer address is needed")
        self.namesrv_addrs = addrs
        self._ns_cycle = itertools.cycle(range(len(addrs)))
        self.client_ip = client_ip or local_ip()
        # The Java client's id: ip@pid#nanoTime, unique per instance in a process.
        self.client_id = f"{self.client_ip}@{instance_name or f'{os.getpid()}#{time.monotonic_ns()}'}"
        self.request_timeout_s = request_timeout_s
        self.dispatch = DispatchTable()
        self.remoting = RemotingClient(dispatch=self.dispatch)
        self.routes: dict[str, TopicRoute] = {}
        self._transaction_checkers: dict[str, TransactionChecker] = {}

    # -- requests ---------------------------------------------------------------------------------------
    async def request(
        self,
        addr: str,
        code: int,
        fields: dict[str, object] | None = None,
        body: Body = b"",
        *,
        timeout_s: float | None = None,
        ok: Iterable[int] = (ResponseCode.SUCCESS,),
    ) -> RemotingCommand:
        """Invoke and return the response; BrokerError when its code is not in ``ok``."""
        cmd = RemotingCommand.request(code, _fields(fields), body)
        resp = await self.remoting.invoke(addr, cmd, timeout_s or self.request_timeout_s)
        if resp.code not in set(ok):
            raise BrokerError(resp.code, resp.remark or "", retriable=resp.code in RETRIABLE_CODES)
        return resp

    async def oneway(
        self, addr: str, code: int, fields: dict[str, object] | None = None, body: Body = b""
    ) -> None:
        await self.remoting.invoke_oneway(
            addr, RemotingCommand.request(code, _fields(fields), body, oneway=True)
        )

    async def namesrv_request(
        self, code: int, fields: dict[str, object], body: Body = b""
    ) -> RemotingCommand:
        """Try each NameServer once, round robin; the last error is raised if all fail."""
        last: Exception | None = None
        for _ in range(len(self.namesrv_addrs)):
            addr = self.namesrv_addrs[next(self._ns_cycle)]
            try:
                return await self.request(addr, code, fields, body)
            except BrokerError:
                raise  # a NameServer answered: another one knows the same
            except ClientError as exc:
                last = exc
        raise ClientError(f"no NameServer reachable: {last}")

    # -- routes -----------------------------------------------------------------------------------------
    async def route(self, topic: str, *, refresh: bool = False) -> TopicRoute:
        if not refresh and topic in self.routes:
            return self.routes[topic]
        resp = await self.namesrv_request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
        route = parse_topic_route(topic, resp.body_bytes())
        self.routes[topic] = route
        return route

    async def refresh_routes(self) -> None:
        for topic in list(self.routes):
            try:
                await self.route(topic, refresh=True)
            except (BrokerError, ClientError) as exc:
                log.info("route refresh for %s failed: %s", topic, exc)

    def broker_addr(self, broker_name: str) -> str:
        for route in self.routes.values():
            if addr := route.master_addr(broker_name):
                return addr
        raise ClientError(f"no master address known for broker {broker_name!r}")

    def all_broker_addrs(self) -> list[str]:
        return sorted({a for r in self.routes.values() for a in r.master_addrs()})

    async def heartbeat(self, data: dict[str, object]) -> None:
        body = orjson.dumps({"clientID": self.client_id, **data})
        for addr in self.all_broker_addrs():
            try:
                await self.request(addr, RequestCode.HEART_BEAT, {}, body)
            except (BrokerError, ClientError) as exc:
                log.info("heartbeat to %s failed: %s", addr, exc)

    async def close(self) -> None:
        await self.remoting.close()

    # -- transaction checks (CHECK_TRANSACTION_STATE, broker → producer) -------------------------------
    def register_transaction_checker(self, group: str, checker: TransactionChecker) -> None:
        """Route the broker's back-checks of ``group``'s half messages (its ``PGROUP``) to ``checker``."""
        if not self._transaction_checkers:
            self.dispatch.register(
                RequestCode.CHECK_TRANSACTION_STATE, self._on_check_transaction_state, replace=True
            )
        self._transaction_checkers[group] = checker

    def unregister_transaction_checker(self, group: str) -> None:
        self._transaction_checkers.pop(group, None)

    async def _on_check_transaction_state(
        self, cmd: RemotingCommand, conn: Connection
    ) -> RemotingCommand | None:
        try:
            records = decode_records(cmd.body_bytes())
        except ProtocolError as exc:
            log.warning("CHECK_TRANSACTION_STATE with an undecodable body: %s", exc)
            return None
        group = records[0].properties.get(Prop.PGROUP) if records else None
        checker = self._transaction_checkers.get(group or "")
        if checker is None:
            log.info("CHECK_TRANSACTION_STATE for producer group %r: no transaction producer here", group)
            return None
        host, port = conn.remote_addr
        await checker(dict(cmd.ext_fields), records[0], f"{host}:{port}")
        return None  # oneway: the answer is an END_TRANSACTION


def _fields(fields: dict[str, object] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (fields or {}).items():
        if v is None:
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out
