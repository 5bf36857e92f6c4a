"""BROADCASTING push consumers: every member gets every message, progress lives in a local file per member
(written every persist interval and on shutdown), and nothing about the group's offsets reaches the broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orbitmq.client import Message, MessageExt, MessageModel, PushConsumer
from orbitmq.client.model import ConsumeFromWhere
from orbitmq.client.offset_store import LocalFileOffsetStore
from orbitmq.client.producer import Producer
from orbitmq.core.errors import ClientError

from .conftest import Cluster, create_topic, until


def _member(cluster: Cluster, name: str, sink: list[MessageExt], root: Path, **kw: object) -> PushConsumer:
    c = PushConsumer("CG-BC", [cluster.ns], message_model=MessageModel.BROADCASTING, offset_store_dir=root,
                     instance_name=name, consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                     long_poll_s=1.0, **kw)  # type: ignore[arg-type]  # fmt: skip
    c.subscribe("TopicBC")
    c.register_listener(sink.append)
    return c


def test_broadcasting_needs_a_directory_for_its_offsets() -> None:
    with pytest.raises(ClientError, match="offset_store_dir"):
        PushConsumer("G", "127.0.0.1:1", message_model=MessageModel.BROADCASTING)


async def test_every_member_gets_everything_and_resumes_from_its_local_file(
    cluster: Cluster, tmp_path: Path
) -> None:
    await create_topic(cluster, "TopicBC", 4)
    a_got: list[MessageExt] = []
    b_got: list[MessageExt] = []
    async with Producer("PG", [cluster.ns]) as p:
        first = [await p.send(Message("TopicBC", f"m{i}".encode())) for i in range(8)]
        a = _member(cluster, "a", a_got, tmp_path, persist_interval_s=0.2)
        b = _member(cluster, "b", b_got, tmp_path)
        await a.start()
        await b.start()
        await until(lambda: len(a_got) >= 8 and len(b_got) >= 8)
        assert len(a.assigned_queues()) == len(b.assigned_queues()) == 4  # not shared: all of them
        file_a = tmp_path / "a" / "CG-BC" / "offsets.json"
        store_a = a.offset_store
        assert isinstance(store_a, LocalFileOffsetStore)
        await until(lambda: store_a.writes >= 2)  # the 0.2 s timer, not only the shutdown
        rows = json.loads(file_a.read_text())["offsetTable"]
        assert sum(r["offset"] for r in rows if r["topic"] == "TopicBC") == 8
        await b.shutdown()
        later = [await p.send(Message("TopicBC", f"n{i}".encode())) for i in range(4)]
        await until(lambda: len(a_got) >= 12)
        b_again: list[MessageExt] = []
        b2 = _member(cluster, "b", b_again, tmp_path)
        await b2.start()
        await until(lambda: len(b_again) >= 4)
        await a.shutdown()
        await b2.shutdown()
    assert cluster.broker is not None
    assert cluster.broker.offsets.query_offsets("CG-BC", "TopicBC") == {}  # nothing reached the broker
    ids = sorted(s.msg_id for s in first)
    assert sorted(m.msg_id for m in a_got) == sorted(ids + [s.msg_id for s in later])
    assert sorted(m.msg_id for m in b_got) == ids
    assert sorted(m.msg_id for m in b_again) == sorted(s.msg_id for s in later)  # resumed, not replayed
    assert not any(t.startswith("%RETRY%") for t in a.subscriptions)


async def test_a_failed_broadcast_message_is_dropped_not_retried(cluster: Cluster, tmp_path: Path) -> None:
    await create_topic(cluster, "TopicBC", 2)
    calls: list[bytes] = []

    def fail_once(m: MessageExt) -> bool:
        calls.append(m.body)
        return m.body != b"bad"

    async with Producer("PG", [cluster.ns]) as p:
        for body in (b"bad", b"good"):
            await p.send(Message("TopicBC", body))
        c = PushConsumer("CG-BCF", [cluster.ns], message_model=MessageModel.BROADCASTING,
                         offset_store_dir=tmp_path, consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                         long_poll_s=1.0)  # fmt: skip
        c.subscribe("TopicBC")
        c.register_listener(fail_once)
        await c.start()
        try:
            await until(lambda: len(calls) >= 2)
            await until(lambda: sum(c.offset_store.table.values()) == 2)
        finally:
            await c.shutdown()
    assert sorted(calls) == [b"bad", b"good"] and c.sent_back == 0
