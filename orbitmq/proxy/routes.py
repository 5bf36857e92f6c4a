"""QueryRoute and QueryAssignment answers (grpc-protocol.md §4.4, §4.5). Pure functions.

Every queue points back at the proxy: clients send everything but QueryRoute to ``broker.endpoints``, so the
endpoints are the access point the client used, with the proxy's own port (unless
``useEndpointPortFromRequest``), and always carry a scheme (Python cannot connect without one).
Brokers appear under their real names with id 0; queue ids start at 0 on each broker (Node 1.0.8 only uses
queue 0).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from rocketmq.grpc_protocol import definition_pb2 as pb

from orbitmq.client.routing import TopicRoute

__all__ = ["assignments", "message_queues", "proxy_endpoints"]


def _scheme(host: str) -> int:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return int(pb.AddressScheme.DOMAIN_NAME)
    return int(pb.AddressScheme.IPv4 if ip.version == 4 else pb.AddressScheme.IPv6)


def proxy_endpoints(requested: Any, host: str, port: int, use_port_from_request: bool) -> Any:
    """The endpoints to hand out: the request's addresses (the client's access point) with our port."""
    addrs = [(a.host, a.port) for a in requested.addresses] if requested is not None else []
    if not addrs:
        addrs = [(host, port)]
    if not use_port_from_request:
        addrs = [(h, port) for h, _ in addrs]
    scheme = int(requested.scheme) if requested is not None and requested.scheme else _scheme(addrs[0][0])
    return pb.Endpoints(scheme=scheme, addresses=[pb.Address(host=h, port=p) for h, p in addrs])


def _permission(readable: bool, writable: bool) -> int:
    if readable and writable:
        return int(pb.Permission.READ_WRITE)
    if readable:
        return int(pb.Permission.READ)
    if writable:
        return int(pb.Permission.WRITE)
    return int(pb.Permission.NONE)


def message_queues(
    route: TopicRoute, resource: Any, endpoints: Any, accept_types: Callable[[str], tuple[int, ...]]
) -> list[Any]:
    """One ``MessageQueue`` per queue of every broker of the route, with its permission and types."""
    readable: dict[str, set[int]] = {}
    writable: dict[str, set[int]] = {}
    for q in route.subscribe_queues:
        readable.setdefault(q.broker_name, set()).add(q.queue_id)
    for q in route.publish_queues:
        writable.setdefault(q.broker_name, set()).add(q.queue_id)
    out: list[Any] = []
    for name in sorted(set(readable) | set(writable)):
        r, w = readable.get(name, set()), writable.get(name, set())
        broker = pb.Broker(name=name, id=0, endpoints=endpoints)
        types = accept_types(name)
        for qid in sorted(r | w):
            out.append(
                pb.MessageQueue(
                    topic=resource, id=qid, permission=_permission(qid in r, qid in w), broker=broker,
                    accept_message_types=types,
                )
            )  # fmt: skip
    return out


def assignments(route: TopicRoute, resource: Any, endpoints: Any, fifo: bool) -> list[Any]:
    """Push-consumer assignments: per readable broker one queue with id -1 (pop every queue there), or, for
    a FIFO group, one per readable queue (FIFO order is per queue)."""
    by_broker: dict[str, list[int]] = {}
    for q in route.subscribe_queues:
        by_broker.setdefault(q.broker_name, []).append(q.queue_id)
    out: list[Any] = []
    for name in sorted(by_broker):
        broker = pb.Broker(name=name, id=0, endpoints=endpoints)
        for qid in sorted(by_broker[name]) if fifo else [-1]:
            mq = pb.MessageQueue(topic=resource, id=qid, permission=pb.Permission.READ_WRITE, broker=broker)
            out.append(pb.Assignment(message_queue=mq))
    return out
