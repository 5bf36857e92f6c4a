"""The real ali-ons 3.12.0 client subscribing with SQL92 (``{expressionType: 'SQL92', subString}``): it sends
the expression in its heartbeat and in every pull header (``postSubscriptionWhenPull``) and filters nothing
itself (its tag set is empty), so what it receives is exactly what the broker selected."""

from __future__ import annotations

from pathlib import Path

from tests.compat.alions import NodeProcesses
from tests.compat.servers import (
    FAST_CONSUMER,
    bodies,
    create_topic,
    delivered,
    orbitmq_cluster,
    unexpected_errors,
)


async def test_sql92_subscription_receives_only_matching_messages(
    alions: NodeProcesses, tmp_path: Path
) -> None:
    async with orbitmq_cluster(tmp_path, enablePropertyFilter="true") as cluster:
        await create_topic(
            cluster, "AlionsSql", 1
        )  # one queue: a later message proves earlier ones were read
        producer = await alions.start_producer(
            cluster.namesrv_addr, "AlionsSql", count=10, tags="T", properties={"a": "{i}"}
        )
        assert (await producer.wait_for_event("done", timeout=30))["sent"] == 10, producer.describe()
        expression = {"expressionType": "SQL92", "subString": "a BETWEEN 3 AND 5 OR a = 9"}
        consumer = await alions.start_consumer(
            cluster.namesrv_addr, "CG_SQL", "AlionsSql", expression=expression, options=FAST_CONSUMER,
            consume_from_where="CONSUME_FROM_FIRST_OFFSET",
        )  # fmt: skip
        msgs = await delivered(consumer, 4)
        assert bodies(msgs) == ["msg-3", "msg-4", "msg-5", "msg-9"], consumer.describe()
        assert [m["properties"]["a"] for m in msgs] == ["3", "4", "5", "9"]
        # Messages that arrive later are filtered the same way (held pulls woken only by a match).
        late = await alions.start_producer(
            cluster.namesrv_addr, "AlionsSql", count=6, body="late-{i}", properties={"a": "{i}"}
        )
        assert (await late.wait_for_event("done", timeout=30))["sent"] == 6
        msgs = await delivered(consumer, 7)
        assert bodies(msgs)[4:] == ["late-3", "late-4", "late-5"], consumer.describe()
        assert not unexpected_errors(consumer), consumer.describe()
