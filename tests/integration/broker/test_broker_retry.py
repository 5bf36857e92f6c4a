"""CONSUMER_SEND_MSG_BACK (36) → the retry topic after the delay level's time → the DLQ after the maximum
(remoting-protocol §2.6, §7.7); retry-topic sends past the maximum (§2.4)."""

from __future__ import annotations

from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.record import MessageRecord

from .conftest import SYS_SUBSCRIPTION, SYS_SUSPEND, Cluster

HOLD = SYS_SUBSCRIPTION | SYS_SUSPEND


async def send_back(cluster: Cluster, msg: MessageRecord, max_times: int = 2, level: int = 0) -> int:
    r = await cluster.call(
        RequestCode.CONSUMER_SEND_MSG_BACK, offset=msg.physical_offset, group="RG", delayLevel=level,
        originMsgId=msg.offset_msg_id, originTopic="Orig", unitMode=False, maxReconsumeTimes=max_times,
    )  # fmt: skip
    return r.code


async def test_send_back_retries_after_the_delay_then_dead_letters(cluster: Cluster) -> None:
    assert (await cluster.send("Orig", b"fails", tags="T", keys="K1")).code == 0
    _, [original] = await cluster.pull("Orig", group="RG")

    assert await send_back(cluster, original) == ResponseCode.SUCCESS
    # Delay level 3 + 0 = 3 (1 s in the test table): it waits in SCHEDULE_TOPIC_XXXX queue 2 first.
    assert cluster.b.store.max_offset_in_queue("SCHEDULE_TOPIC_XXXX", 2) == 1
    assert cluster.b.store.max_offset_in_queue("%RETRY%RG", 0) == 0
    response, [retry1] = await cluster.pull("%RETRY%RG", 0, 0, group="RG", sys_flag=HOLD)
    assert response.code == ResponseCode.SUCCESS
    assert retry1.topic == "%RETRY%RG" and retry1.body == b"fails" and retry1.reconsume_times == 1
    assert retry1.properties["RETRY_TOPIC"] == "Orig"
    assert retry1.properties["ORIGIN_MESSAGE_ID"] == original.offset_msg_id
    assert retry1.properties["TAGS"] == "T" and retry1.properties["KEYS"] == "K1"
    assert retry1.uniq_key == original.uniq_key and retry1.born_timestamp == original.born_timestamp

    # Second failure: level 3 + 1; the copy keeps the first topic and the first message id.
    assert await send_back(cluster, retry1) == ResponseCode.SUCCESS
    assert cluster.b.store.max_offset_in_queue("SCHEDULE_TOPIC_XXXX", 3) == 1
    _, [retry2] = await cluster.pull("%RETRY%RG", 0, 1, group="RG", sys_flag=HOLD)
    assert retry2.reconsume_times == 2 and retry2.properties["RETRY_TOPIC"] == "Orig"
    assert retry2.properties["ORIGIN_MESSAGE_ID"] == original.offset_msg_id

    # reconsumeTimes 2 >= maxReconsumeTimes 2: straight to %DLQ%RG, no delay.
    assert await send_back(cluster, retry2) == ResponseCode.SUCCESS
    response, [dead] = await cluster.pull("%DLQ%RG", 0, 0, group="RG")
    assert response.code == ResponseCode.SUCCESS
    assert dead.topic == "%DLQ%RG" and dead.reconsume_times == 3 and dead.body == b"fails"
    assert cluster.b.topics.select_topic_config("%DLQ%RG") is not None


async def test_negative_level_goes_to_the_dlq_at_once(cluster: Cluster) -> None:
    assert (await cluster.send("Orig", b"poison")).code == 0
    _, [msg] = await cluster.pull("Orig", group="RG")
    assert await send_back(cluster, msg, max_times=16, level=-1) == ResponseCode.SUCCESS
    _, [dead] = await cluster.pull("%DLQ%RG", 0, 0, group="RG")
    assert dead.body == b"poison" and dead.reconsume_times == 1


async def test_send_back_of_an_unknown_offset_fails(cluster: Cluster) -> None:
    assert (await cluster.send("Orig", b"x")).code == 0
    r = await cluster.call(RequestCode.CONSUMER_SEND_MSG_BACK, offset=123456789, group="RG", delayLevel=0)
    assert r.code == ResponseCode.SYSTEM_ERROR and "123456789" in (r.remark or "")


async def test_retry_topic_send_past_the_maximum_goes_to_the_dlq(cluster: Cluster) -> None:
    # ali-ons' fallback when send-back fails: a plain send to %RETRY%<group> with j/l headers.
    ok = await cluster.send("%RETRY%FG", b"again", reconsumeTimes=1, maxReconsumeTimes=2)
    assert ok.code == ResponseCode.SUCCESS
    assert cluster.b.store.max_offset_in_queue("%RETRY%FG", 0) == 1
    past = await cluster.send("%RETRY%FG", b"too many", reconsumeTimes=3, maxReconsumeTimes=2)
    assert past.code == ResponseCode.SUCCESS
    _, [dead] = await cluster.pull("%DLQ%FG", 0, 0, group="FG")
    assert dead.body == b"too many" and dead.properties["DELAY"] == "-1"
