"""Long polling (remoting-protocol §6.3, §9 traps 4-5): a pull that finds nothing is held, woken by a send,
answered on time, bounded, and never blocks other requests on its connection."""

from __future__ import annotations

import asyncio

from orbitmq.protocol.codes import RequestCode, ResponseCode

from .conftest import SYS_COMMIT, SYS_SUBSCRIPTION, SYS_SUSPEND, Cluster, until

HOLD = SYS_SUBSCRIPTION | SYS_SUSPEND


async def test_held_pull_is_woken_by_a_send_and_the_connection_stays_responsive(cluster: Cluster) -> None:
    assert (await cluster.send("LP", b"first")).code == 0
    held = asyncio.create_task(cluster.pull("LP", 0, 1, sys_flag=HOLD | SYS_COMMIT, commit_offset=1))
    await until(lambda: cluster.b.long_polling.held_count == 1)
    assert not held.done()

    # Same client, same connection: an unrelated request is answered while the pull is held.
    r = await cluster.call(RequestCode.GET_MAX_OFFSET, topic="LP", queueId=0)
    assert r.code == ResponseCode.SUCCESS and r.ext_fields["offset"] == "1"
    assert len(cluster.client.addresses) == 1 and not held.done()
    # The commit piggy-backed on the held pull was stored on its first pass.
    q = await cluster.call(RequestCode.QUERY_CONSUMER_OFFSET, consumerGroup="G", topic="LP", queueId=0)
    assert q.ext_fields["offset"] == "1"

    assert (await cluster.send("LP", b"second")).code == 0
    response, records = await asyncio.wait_for(held, 5)
    assert response.code == ResponseCode.SUCCESS
    assert [m.body for m in records] == [b"second"] and response.ext_fields["nextBeginOffset"] == "2"
    assert cluster.b.long_polling.held_count == 0


async def test_held_pull_times_out_with_pull_not_found(cluster: Cluster) -> None:
    assert (await cluster.send("LPT", b"x")).code == 0
    response, _ = await cluster.pull("LPT", 0, 1, sys_flag=HOLD, suspend_ms=300)
    assert response.code == ResponseCode.PULL_NOT_FOUND
    assert response.ext_fields["nextBeginOffset"] == "1" and response.ext_fields["maxOffset"] == "1"


async def test_other_queues_and_other_tags_do_not_wake_it(cluster: Cluster) -> None:
    assert (await cluster.send("LPF", b"creates the topic", queue_id=0)).code == 0
    held = asyncio.create_task(cluster.pull("LPF", 2, 0, sys_flag=HOLD, subscription="TagA"))
    await until(lambda: cluster.b.long_polling.held_count == 1)
    assert (await cluster.send("LPF", b"other queue", tags="TagA", queue_id=1)).code == 0
    assert (await cluster.send("LPF", b"other tag", tags="TagB", queue_id=2)).code == 0
    await asyncio.sleep(0.05)  # give a wrong wake-up the chance to happen
    assert not held.done() and cluster.b.long_polling.held_count == 1
    assert (await cluster.send("LPF", b"wanted", tags="TagA", queue_id=2)).code == 0
    response, records = await asyncio.wait_for(held, 5)
    assert response.code == 0 and [m.body for m in records] == [b"wanted"]


async def test_full_table_answers_at_once(cluster: Cluster) -> None:
    assert (await cluster.send("LPB", b"creates the topic", queue_id=3)).code == 0
    cluster.b.long_polling.max_requests = 1
    first = asyncio.create_task(cluster.pull("LPB", 0, 0, sys_flag=HOLD))
    await until(lambda: cluster.b.long_polling.held_count == 1)
    second, _ = await cluster.pull("LPB", 1, 0, sys_flag=HOLD, timeout=2)
    assert second.code == ResponseCode.PULL_NOT_FOUND
    assert cluster.b.long_polling.refused == 1 and not first.done()
    assert (await cluster.send("LPB", b"x")).code == 0
    assert (await asyncio.wait_for(first, 5))[0].code == ResponseCode.SUCCESS


async def test_closing_the_connection_releases_its_held_pulls(cluster: Cluster) -> None:
    from orbitmq.net import RemotingClient

    other = RemotingClient()
    assert (await cluster.send("LPC", b"creates the topic", queue_id=3)).code == 0
    held = asyncio.create_task(cluster.pull("LPC", 0, 0, sys_flag=HOLD, client=other))
    await until(lambda: cluster.b.long_polling.held_count == 1)
    await other.close()
    await until(lambda: cluster.b.long_polling.held_count == 0)
    assert held.done()
    held.exception()  # the client side sees its connection closed


async def test_stopping_the_broker_answers_held_pulls(cluster: Cluster) -> None:
    assert (await cluster.send("LPS", b"creates the topic", queue_id=3)).code == 0
    held = asyncio.create_task(cluster.pull("LPS", 0, 0, sys_flag=HOLD))
    await until(lambda: cluster.b.long_polling.held_count == 1)
    await cluster.b.stop()
    response, _ = await asyncio.wait_for(held, 5)
    assert response.code == ResponseCode.PULL_NOT_FOUND
    cluster.broker = None
