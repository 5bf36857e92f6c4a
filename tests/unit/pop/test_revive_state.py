"""Revive matching (orbitmq.broker.pop.revive_state): what is due, and where a restart reads again."""

from __future__ import annotations

from orbitmq.broker.pop.records import AckMsg, PopCheckPoint
from orbitmq.broker.pop.revive_state import ReviveQueueState


def ck(
    so: int, pt: int, n: int, *, q: int = 0, it: int = 1000, at: int = 0, topic: str = "T"
) -> PopCheckPoint:
    return PopCheckPoint(so, pt, it, n, q, topic, "G", "b", list(range(n)), revive_offset=at)


def ack(c: PopCheckPoint, *offsets: int) -> AckMsg:
    return AckMsg(c.start_offset, c.cid, c.topic, c.queue_id, c.pop_time, c.broker_name, offsets)


def test_due_after_invisible_time_and_acked_bits_are_not_revived() -> None:
    s = ReviveQueueState(0)
    a = ck(0, 100, 3, at=0)
    s.on_checkpoint(a)
    s.on_ack(ack(a, 1))
    s.read_up_to(2)
    assert s.due(1099) == []
    [due] = s.due(1100)
    assert due.unacked_offsets() == [0, 2]
    s.revived(a.key, [0, 2])
    assert len(s) == 0 and s.commit_offset() == 2


def test_commit_offset_stays_at_the_oldest_pending_checkpoint() -> None:
    s = ReviveQueueState(5)
    long_one = ck(0, 100, 1, it=600_000, at=5)
    short_one = ck(1, 100, 1, it=1000, at=6)
    s.on_checkpoint(long_one)
    s.on_checkpoint(short_one)
    s.read_up_to(7)
    s.revived(short_one.key, [1])
    assert s.commit_offset() == 5  # the long one is neither acked nor revived: a restart reads it again
    s.on_ack(ack(long_one, 0))
    s.read_up_to(8)
    assert s.commit_offset() == 8


def test_keys_do_not_collide_across_queues_with_concatenation_lookalikes() -> None:
    """Upstream's key 'T'+'G'+1+23 equals 'T'+'G'+12+3 (§6.1); ours are tuples."""
    s = ReviveQueueState(0)
    a = ck(23, 100, 1, q=1, at=0)
    b = ck(3, 100, 1, q=12, at=1)
    b.queue_offset_diff = [0]
    s.on_checkpoint(a)
    s.on_checkpoint(b)
    s.on_ack(ack(a, 23))
    assert [p.ck.queue_id for p in s.due(10_000)] == [12]


def test_same_start_offset_in_two_topics_are_two_checkpoints() -> None:
    """§6.2: upstream orders in-flight revives by start offset only; two topics' CKs at offset 0 collide."""
    s = ReviveQueueState(0)
    s.on_checkpoint(ck(0, 100, 1, topic="A", at=0))
    s.on_checkpoint(ck(0, 100, 1, topic="B", at=1))
    assert len(s.due(10_000)) == 2


def test_early_ack_is_applied_when_its_checkpoint_arrives() -> None:
    s = ReviveQueueState(0)
    a = ck(0, 100, 2, at=1)
    s.on_ack(ack(a, 0, 1))  # written before its checkpoint (a retried checkpoint write)
    s.on_checkpoint(a)
    assert len(s) == 0 and s.orphan_acks == 1


def test_orphans_are_bounded_and_markers_of_finished_checkpoints_are_ignored() -> None:
    s = ReviveQueueState(0, orphans_max=3)
    for i in range(10):
        s.on_ack(ack(ck(i, 1, 1), i))
    assert len(s._orphans) == 3
    a = ck(100, 5, 1, at=20)
    s.on_checkpoint(a)
    s.on_ack(ack(a, 100))
    before = s.orphan_acks
    s.on_ack(ack(a, 100))  # duplicate / revive marker after it finished
    assert s.orphan_acks == before


def test_duplicate_checkpoint_key_keeps_the_first() -> None:
    s = ReviveQueueState(0)
    a = ck(0, 100, 1, at=0)
    b = ck(0, 100, 1, at=1)
    s.on_checkpoint(a)
    s.on_checkpoint(b)
    assert len(s) == 1 and s.commit_offset() == 0


def test_legacy_checkpoint_without_diffs_is_contiguous() -> None:
    c = PopCheckPoint(10, 1, 1, 3, 0, "T", "G", "b")
    assert c.offsets() == [10, 11, 12] and c.index_of_ack(12) == 2 and c.index_of_ack(13) == -1
    c.queue_offset_diff = [0, 5, 7]
    assert c.offsets() == [10, 15, 17] and c.index_of_ack(15) == 1 and c.index_of_ack(11) == -1


def test_3443_trailing_orphan_acks_do_not_hold_the_revive_progress() -> None:
    s = ReviveQueueState(0)
    for i in range(5):
        s.on_ack(ack(ck(i, 1, 1), i))  # acks of checkpoints passed long ago
    s.read_up_to(5)
    assert s.commit_offset() == 5


def test_8460_an_ack_without_broker_name_is_the_local_brokers() -> None:
    from orbitmq.broker.pop.records import AckMsg as Ack

    parsed = Ack.from_json(
        {"ao": 3, "so": 0, "c": "G", "t": "T", "q": 0, "pt": 1}, batch=False, default_broker="b"
    )
    assert parsed.broker_name == "b" and parsed.ack_offsets == (3,)
