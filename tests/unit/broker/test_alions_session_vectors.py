"""Golden vectors: a whole real ali-ons 3.12.0 session (NameServer and Broker traffic) captured through the
relay against OrbitMQ (tests/compat/vectors/alions/README.md). Every request frame ali-ons sent decodes with
``orbitmq.protocol.frame`` into the code and header fields the broker's handlers read; every body ali-ons
parsed (route, consumer list, pull records) decodes as it must."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import orjson
import pytest

from orbitmq.broker.handlers.pull import PullRequestHeader
from orbitmq.broker.handlers.send import SendHeader
from orbitmq.broker.heartbeat import HeartbeatData
from orbitmq.protocol.codes import RequestCode
from orbitmq.protocol.command import RemotingCommand
from orbitmq.protocol.frame import FrameDecoder
from orbitmq.protocol.record import decode_offset_msg_id, decode_properties, decode_records

VECTORS = Path(__file__).parents[2] / "compat" / "vectors" / "alions"
NS = VECTORS / "alions-3.12.0-session.ns.json"
BROKER = VECTORS / "alions-3.12.0-session.broker.json"
#: Everything ali-ons ever sends (remoting-protocol §2.1).
ALIONS_CODES = {105, 34, 35, 310, 11, 14, 15, 30, 29, 38, 36}


def frames(path: Path, direction: str) -> list[tuple[RemotingCommand, dict[str, object]]]:
    """Each captured frame of ``direction`` decoded from its raw bytes, with the relay's reading of it
    (plus ``conn``, the relay's connection number: opaques are only unique per connection)."""
    out = []
    for f in json.loads(path.read_text())["frames"]:
        if f["direction"] != direction:
            continue
        decoder = FrameDecoder(detect_foreign_protocols=False)
        decoder.feed(bytes.fromhex(f["hex"]))
        cmd = decoder.next_command()
        assert cmd is not None and decoder.buffered_bytes == 0, f
        out.append((cmd, {**f["header"], "conn": f["conn"]}))
    return out


def requests(code: int) -> list[RemotingCommand]:
    return [c for c, _ in frames(BROKER, "c2s") + frames(NS, "c2s") if c.code == code]


def broker_exchanges(code: int) -> list[tuple[RemotingCommand, RemotingCommand]]:
    """(request, answer) pairs of the broker capture for request ``code``, matched by connection and opaque."""
    asked = {(h["conn"], c.opaque): c for c, h in frames(BROKER, "c2s") if c.code == code}
    return [(asked[(h["conn"], a.opaque)], a) for a, h in frames(BROKER, "s2c")
            if a.is_response and (h["conn"], a.opaque) in asked]  # fmt: skip


def test_every_request_ali_ons_sends_was_captured_and_decodes() -> None:
    seen: Counter[int] = Counter()
    for path in (NS, BROKER):
        for cmd, header in frames(path, "c2s"):
            seen[cmd.code] += 1
            assert (cmd.language, cmd.version, cmd.serialize_type) == ("JAVA", 121, 0)
            assert cmd.opaque == header["opaque"] and not cmd.is_response
            assert cmd.flag == 0  # ali-ons never sets the oneway bit, not even for UPDATE_CONSUMER_OFFSET
            assert all(
                isinstance(v, str) for v in cmd.ext_fields.values()
            )  # JSON numbers/booleans normalised
    assert set(seen) == ALIONS_CODES, seen


def test_route_queries_and_their_answers() -> None:
    assert {c.ext_fields["topic"] for c in requests(105)} == {
        "VectorTopic",
        "%RETRY%CG_VECTOR",
        "%RETRY%CG_VECTOR_TS",
    }
    for answer, _ in frames(NS, "s2c"):
        route = orjson.loads(answer.body_bytes())
        assert route["queueDatas"] and route["brokerDatas"]  # ali-ons sorts both: they must be present
        assert route["brokerDatas"][0]["brokerAddrs"]["0"].startswith("127.0.0.1:")


def test_send_headers_parse_as_the_send_handler_reads_them() -> None:
    sends = requests(RequestCode.SEND_MESSAGE_V2)
    assert len(sends) == 3
    for i, cmd in enumerate(sorted(sends, key=lambda c: c.body_bytes())):
        h = SendHeader.parse(cmd)
        assert (h.producer_group, h.topic, h.default_topic, h.default_topic_queue_nums) == (
            "PG_VECTOR", "VectorTopic", "TBW102", 4,
        )  # fmt: skip
        assert (h.sys_flag, h.flag, h.reconsume_times, h.unit_mode, h.batch) == (0, 0, 0, False, False)
        assert decode_properties(h.properties) == {"TAGS": "TagA", "KEYS": f"k{i}"}
        assert cmd.body_bytes() == f"msg-{i}".encode()


def test_heartbeats_decode_with_the_broker_parser() -> None:
    beats = [HeartbeatData.decode(c.body_bytes()) for c in requests(RequestCode.HEART_BEAT)]
    consumer = next(b for b in beats if b.consumers and b.consumers[0].group_name == "CG_VECTOR")
    assert consumer.client_id.endswith("@vector-consumer")
    topics = {
        s.topic for b in beats for c in b.consumers if c.group_name == "CG_VECTOR" for s in c.subscriptions
    }
    assert topics == {"VectorTopic", "%RETRY%CG_VECTOR"}
    assert all(b.producer_groups == ("CLIENT_INNER_PRODUCER",) for b in beats)


@pytest.mark.parametrize(
    ("code", "fields"),
    [
        (RequestCode.UNREGISTER_CLIENT, {"clientID"}),
        (RequestCode.QUERY_CONSUMER_OFFSET, {"consumerGroup", "topic", "queueId"}),
        (RequestCode.UPDATE_CONSUMER_OFFSET, {"consumerGroup", "topic", "queueId", "commitOffset"}),
        (RequestCode.GET_MAX_OFFSET, {"topic", "queueId"}),
        (RequestCode.SEARCH_OFFSET_BY_TIMESTAMP, {"topic", "queueId", "timestamp"}),
        (RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup"}),
        (RequestCode.CONSUMER_SEND_MSG_BACK, {"offset", "group", "delayLevel", "maxReconsumeTimes"}),
    ],
)
def test_small_request_headers(code: int, fields: set[str]) -> None:
    captured = requests(code)
    assert captured
    for cmd in captured:
        assert fields <= cmd.ext_fields.keys(), cmd.ext_fields


def test_quirks_the_handlers_rely_on() -> None:
    # UPDATE_CONSUMER_OFFSET: an in-memory offset of 0 goes out as -1 (the broker must not store it).
    assert "-1" in {c.ext_fields["commitOffset"] for c in requests(RequestCode.UPDATE_CONSUMER_OFFSET)}
    # CONSUMER_SEND_MSG_BACK: delay level 0 (the broker picks 3 + reconsumeTimes), max 16, the original
    # topic, and the offset message id whose offset is the one the broker looks up.
    [back] = requests(RequestCode.CONSUMER_SEND_MSG_BACK)
    ext = back.ext_fields
    assert (ext["group"], ext["delayLevel"], ext["maxReconsumeTimes"], ext["originTopic"], ext["unitMode"]) == (
        "CG_VECTOR", "0", "16", "VectorTopic", "false",
    )  # fmt: skip
    assert decode_offset_msg_id(ext["originMsgId"])[2] == int(ext["offset"])
    # The fallback consumer (CONSUME_FROM_TIMESTAMP, answered 22) searched by time and asked the retry
    # topic's max offset.
    assert {c.ext_fields["topic"] for c in requests(RequestCode.GET_MAX_OFFSET)} == {"%RETRY%CG_VECTOR_TS"}
    assert {c.ext_fields["topic"] for c in requests(RequestCode.SEARCH_OFFSET_BY_TIMESTAMP)} == {
        "VectorTopic"
    }


def test_pull_headers_and_the_records_ali_ons_decoded() -> None:
    pulls = [PullRequestHeader.parse(c) for c in requests(RequestCode.PULL_MESSAGE)]
    assert {p.sys_flag for p in pulls} <= {6, 7}  # SUSPEND | SUBSCRIPTION, plus COMMIT when > 0
    assert {(p.max_msg_nums, p.suspend_timeout_millis, p.subscription) for p in pulls} == {(32, 15000, "*")}
    bodies = []
    for request, answer in broker_exchanges(RequestCode.PULL_MESSAGE):
        assert {
            "suggestWhichBrokerId",
            "nextBeginOffset",
            "minOffset",
            "maxOffset",
        } <= answer.ext_fields.keys()
        if answer.code != 0:
            continue
        records = decode_records(answer.body_bytes())
        pull = PullRequestHeader.parse(request)
        assert all(r.topic == pull.topic and r.queue_id == pull.queue_id for r in records)
        assert int(answer.ext_fields["nextBeginOffset"]) == records[-1].queue_offset + 1
        if pull.consumer_group == "CG_VECTOR":
            bodies += [(r.topic, r.body, r.reconsume_times) for r in records]
    assert sorted(b for t, b, _ in bodies if t == "VectorTopic") == [b"msg-0", b"msg-1", b"msg-2"]
    assert ("%RETRY%CG_VECTOR", b"msg-1", 1) in bodies  # the send-back's copy, one reconsume later


def test_consumer_list_answers() -> None:
    answers = broker_exchanges(RequestCode.GET_CONSUMER_LIST_BY_GROUP)
    assert answers
    for _, answer in answers:
        assert answer.code == 0  # an error here would kill an ali-ons consumer for good (§9 trap 16)
        ids = orjson.loads(answer.body_bytes())["consumerIdList"]
        assert ids and all("@vector-" in i for i in ids)
