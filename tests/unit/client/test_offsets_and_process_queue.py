from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from orbitmq.client.model import MessageExt, MessageQueue
from orbitmq.client.offset_store import LocalFileOffsetStore, local_offsets_path
from orbitmq.client.process_queue import ProcessQueue
from orbitmq.client.pull import tags_of

MQ = MessageQueue("T", "b", 0)


def _msg(offset: int, body: bytes = b"x") -> MessageExt:
    return MessageExt("T", body, {}, f"id{offset}", "", "b", 0, offset, 0, 0, 0, 0, "T")


async def test_local_file_round_trip_and_backup_fallback(tmp_path: Path) -> None:
    path = local_offsets_path(tmp_path, "G", None)
    assert path == tmp_path / "DEFAULT" / "G" / "offsets.json"
    store = LocalFileOffsetStore(path)
    await store.load()
    assert store.table == {}
    store.update(MQ, 5)
    store.update(MessageQueue("T", "b", 1), 7)
    await store.persist_all([MQ])
    store.update(MQ, 9)
    await store.persist_all([MQ])  # the file before this one becomes offsets.json.bak
    again = LocalFileOffsetStore(path)
    await again.load()
    assert again.table == {MQ: 9, MessageQueue("T", "b", 1): 7}
    path.write_bytes(b'{"offsetTable": [{"topic": ')  # torn write of the newest file
    damaged = LocalFileOffsetStore(path)
    await damaged.load()
    assert damaged.table[MQ] == 5


def test_increase_only_updates_never_move_an_offset_back() -> None:
    store = LocalFileOffsetStore("unused")
    store.update(MQ, 10)
    store.update(MQ, 4, increase_only=True)
    assert store.read(MQ) == 10
    store.update(MQ, 4)
    assert store.read(MQ) == 4


@given(st.permutations(list(range(20))), st.integers(0, 20))
def test_commit_offset_never_passes_an_unfinished_message(order: list[int], finished: int) -> None:
    pq = ProcessQueue(MQ, 100)
    pq.put([_msg(100 + i) for i in range(20)], 120)
    done = set(order[:finished])
    for i in order[:finished]:
        pq.remove(100 + i)
    first_unfinished = min((i for i in range(20) if i not in done), default=20)
    assert pq.commit_offset() == 100 + first_unfinished


def test_process_queue_keeps_order_ignores_duplicates_and_tracks_bytes() -> None:
    pq = ProcessQueue(MQ, 0)
    assert pq.put([_msg(0, b"ab"), _msg(1, b"cde")], 2) and pq.cached_bytes == 5
    assert pq.put([_msg(1), _msg(0)], 2) == []  # already held
    assert pq.first() is not None and pq.first().queue_offset == 0  # type: ignore[union-attr]
    assert [m.queue_offset for m in pq.take(5)] == [0, 1] and pq.cached_bytes == 0
    pq.skip_to(9)  # a pull found nothing more (filtered) up to 9
    assert pq.commit_offset() == 9 and pq.next_offset == 9
    pq.put([_msg(9), _msg(10)], 11)
    assert pq.span() == 1
    pq.clear(3)
    assert (pq.commit_offset(), pq.next_offset, pq.cached_count) == (3, 3, 0)


def test_tag_expressions() -> None:
    assert tags_of("*") == frozenset() and tags_of(" ") == frozenset()
    assert tags_of("A || B ||") == {"A", "B"}
