"""AdminClient: administration of a running cluster over the remoting protocol, as RocketMQ's
``DefaultMQAdminExt`` does it. One object, several families of operations (one module each):

- topics (:mod:`orbitmq.admin.topics`): create/update/delete on every master of a cluster, list, route,
  config, status (min/max offset per queue);
- groups (:mod:`orbitmq.admin.groups`): subscription group configs, members and lag per queue;
- offsets (:mod:`orbitmq.admin.offsets`): show, reset, export, import, sync by time;
- messages (:mod:`orbitmq.admin.messages`): by id, by key, by queue and offset, send a test message;
- cluster (:mod:`orbitmq.admin.cluster`): brokers with version, TPS and disk usage; broker config.

Use it as an async context manager, or call :meth:`close`::

    async with AdminClient("127.0.0.1:9876") as admin:
        await admin.create_topic("Orders", queues=4)
"""

from __future__ import annotations

from orbitmq.admin.cluster import ClusterAdmin
from orbitmq.admin.messages import MessageAdmin
from orbitmq.admin.modes import ModeAdmin
from orbitmq.admin.offsets import OffsetAdmin

__all__ = ["AdminClient"]


class AdminClient(OffsetAdmin, MessageAdmin, ClusterAdmin, ModeAdmin):
    """Everything an operator (or a test) does to a cluster; see the module docstring."""

    async def __aenter__(self) -> AdminClient:
        return self
