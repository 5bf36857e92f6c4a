"""ConsumerManager, ProducerManager, heartbeat parsing (membership, subscriptions, expiry, notification)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from orbitmq.broker.config import BrokerConfig
from orbitmq.broker.filters import SubscriptionData, build_subscription
from orbitmq.broker.groups import ChannelLike, ConsumerManager, ProducerManager
from orbitmq.broker.heartbeat import ConsumeFromWhere, ConsumeType, HeartbeatData, MessageModel
from orbitmq.core.errors import ProtocolError
from orbitmq.protocol.command import RemotingCommand

_ids = itertools.count(1)


@dataclass(eq=False)
class FakeChannel:
    id: int = field(default_factory=lambda: next(_ids))
    remote_addr: str = "192.0.2.7:50000"
    sent: list[RemotingCommand] = field(default_factory=list)
    closed: bool = False

    def send_oneway(self, cmd: RemotingCommand) -> None:
        self.sent.append(cmd)

    def close(self) -> None:
        self.closed = True


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int]]] = []

    def __call__(self, group: str, channels: list[ChannelLike]) -> None:
        self.calls.append((group, sorted(c.id for c in channels)))


def consumers(**cfg: object) -> tuple[ConsumerManager, Recorder]:
    rec = Recorder()
    return ConsumerManager(BrokerConfig(**cfg), on_change=rec), rec  # type: ignore[arg-type]


def register(
    m: ConsumerManager,
    ch: FakeChannel,
    client_id: str,
    subs: list[SubscriptionData] | None = None,
    now_ms: int = 0,
    group: str = "G",
    model: MessageModel = MessageModel.CLUSTERING,
    **kw: bool | str,
):
    return m.register_consumer(
        group,
        ch,
        client_id,
        "JAVA",
        401,
        ConsumeType.CONSUME_PASSIVELY,
        model,
        ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET,
        subs if subs is not None else [build_subscription("T", "*", None, 1)],
        now_ms,
        **kw,
    )


# -- heartbeat body ---------------------------------------------------------------------------------------
def test_ali_ons_heartbeat_body() -> None:
    body = (
        b'{"clientID":"192.0.2.2@c1","consumerDataSet":[{"groupName":"CG","consumeType":"CONSUME_PASSIVELY",'
        b'"messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","subscriptionDataSet":['
        b'{"topic":"TopicTest","subString":"*","classFilterMode":false,"tagsSet":[],"codeSet":[],'
        b'"subVersion":1795239044994}],"unitMode":false}],"producerDataSet":[{"groupName":"CLIENT_INNER_PRODUCER"}]}'
    )
    hb = HeartbeatData.decode(body)
    assert hb.client_id == "192.0.2.2@c1"
    assert hb.producer_groups == ("CLIENT_INNER_PRODUCER",)
    (cd,) = hb.consumers
    assert cd.group_name == "CG" and cd.consume_from_where is ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET
    assert cd.subscriptions[0].topic == "TopicTest" and cd.subscriptions[0].sub_version == 1795239044994
    assert not hb.without_sub


def test_java_heartbeat_body() -> None:
    body = (
        b'{"clientID":"10.0.0.5@4711#123456789","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET",'
        b'"consumeType":"CONSUME_PASSIVELY","groupName":"g","messageModel":"BROADCASTING","subscriptionDataSet":[{'
        b'"classFilterMode":false,"codeSet":[97],"expressionType":"TAG","subString":"a","subVersion":1700000000000,'
        b'"tagsSet":["a"],"topic":"t"}],"unitMode":false}],"heartbeatFingerprint":0,"producerDataSet":[{"groupName":'
        b'"CLIENT_INNER_PRODUCER"}],"withoutSub":false}'
    )
    hb = HeartbeatData.decode(body)
    assert hb.consumers[0].message_model is MessageModel.BROADCASTING
    assert hb.consumers[0].subscriptions[0].code_set == (97,)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"clientID":"c","consumerDataSet":{}}',
        b'{"clientID":"c","producerDataSet":[{}]}',
        b'{"clientID":"c","consumerDataSet":[{"groupName":"g","consumeType":"PUSH"}]}',
        b'{"clientID":"c","consumerDataSet":[{"groupName":"g","subscriptionDataSet":[{"topic":5}]}]}',
    ],
)
def test_malformed_heartbeats_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        HeartbeatData.decode(body)


# -- consumers --------------------------------------------------------------------------------------------
def test_first_heartbeat_registers_and_notifies() -> None:
    m, rec = consumers()
    ch = FakeChannel()
    result = register(m, ch, "c1")
    assert result.new_channel and result.subscriptions_changed and result.changed
    assert m.consumer_ids("G") == ["c1"]
    assert rec.calls == [("G", [ch.id])]
    assert m.groups_of_topic("T") == {"G"}
    assert m.subscription("G", "T") == build_subscription("T", "*", None, 1)


def test_repeated_heartbeat_changes_nothing() -> None:
    m, rec = consumers()
    ch = FakeChannel()
    register(m, ch, "c1")
    result = register(m, ch, "c1", now_ms=30_000)
    assert not result.changed
    assert len(rec.calls) == 1


def test_second_consumer_notifies_both() -> None:
    m, rec = consumers()
    a, b = FakeChannel(), FakeChannel()
    register(m, a, "c1")
    register(m, b, "c2")
    assert m.consumer_ids("G") == ["c1", "c2"]
    assert rec.calls[-1] == ("G", sorted([a.id, b.id]))


def test_subscription_versions() -> None:
    m, rec = consumers()
    ch = FakeChannel()
    register(m, ch, "c1", [build_subscription("T", "a", None, 10)])
    newer = build_subscription("T", "b", None, 20)
    assert not register(m, ch, "c1", [newer]).changed, "a newer version of a known topic is stored silently"
    assert m.subscription("G", "T") == newer
    register(m, ch, "c1", [build_subscription("T", "c", None, 15)])
    assert m.subscription("G", "T") == newer, "an older version never replaces a newer one"
    added = register(m, ch, "c1", [newer, build_subscription("%RETRY%G", "*", None, 20)])
    assert added.subscriptions_changed
    removed = register(m, ch, "c1", [build_subscription("%RETRY%G", "*", None, 20)])
    assert removed.subscriptions_changed and m.subscription("G", "T", include_compensated=False) is None
    assert m.groups_of_topic("T") == set()
    assert len(rec.calls) == 3


def test_without_sub_heartbeat_keeps_subscriptions() -> None:
    m, _ = consumers()
    ch = FakeChannel()
    register(m, ch, "c1", [build_subscription("T", "*", None, 1)])
    assert not register(m, ch, "c1", [], update_subscription=False).changed
    assert m.subscription("G", "T") is not None


def test_broadcasting_and_disabled_notification_are_silent() -> None:
    m, rec = consumers()
    register(m, FakeChannel(), "c1", model=MessageModel.BROADCASTING)
    register(m, FakeChannel(), "c2", model=MessageModel.BROADCASTING)
    register(m, FakeChannel(), "c1", group="Quiet", notify_enabled=False)
    assert rec.calls == []
    off, rec_off = consumers(notify_consumer_ids_changed_enable=False)
    register(off, FakeChannel(), "c1")
    assert rec_off.calls == []


def test_unregister_and_close() -> None:
    m, rec = consumers()
    a, b = FakeChannel(), FakeChannel()
    register(m, a, "c1")
    register(m, a, "c1", group="H")
    register(m, b, "c2")
    rec.calls.clear()
    assert not m.unregister_consumer("G", b, "c1"), "another client's id on the channel removes nothing"
    assert m.unregister_consumer("G", b, "c2")
    assert not m.unregister_consumer("G", b, "c2")
    assert rec.calls == [("G", [a.id])]
    assert sorted(m.channel_closed(a)) == ["G", "H"]
    assert m.consumer_ids("G") == [] and m.group_info("G") is None and m.groups() == []
    assert len(rec.calls) == 1, "an emptied group has nobody to notify"


def test_a_proxy_channel_carries_one_member_per_client() -> None:
    """A proxy heartbeats for each gRPC consumer on its one connection: each is a member with the address the
    proxy reports; the group is notified once per channel; each leaves on its own."""
    m, rec = consumers()
    proxy, other = FakeChannel(remote_addr="10.0.0.9:40000"), FakeChannel()
    register(m, proxy, "grpc-a", client_addr="192.0.2.1:1111")
    register(m, proxy, "grpc-b", client_addr="192.0.2.2:2222")
    register(m, other, "remoting-c")
    assert m.consumer_ids("G") == ["grpc-a", "grpc-b", "remoting-c"]
    snap = m.group_info("G")
    assert snap is not None
    assert [(x.client_id, x.client_addr) for x in snap.members] == [
        ("grpc-a", "192.0.2.1:1111"), ("grpc-b", "192.0.2.2:2222"), ("remoting-c", "192.0.2.7:50000")
    ]  # fmt: skip
    assert sorted(c.id for c in m.channels("G")) == sorted([proxy.id, other.id])
    rec.calls.clear()
    assert m.unregister_consumer("G", proxy, "grpc-a")
    assert m.consumer_ids("G") == ["grpc-b", "remoting-c"]
    assert rec.calls == [("G", sorted([proxy.id, other.id]))], "each channel is told once"
    assert m.channel_closed(proxy) == ["G"]
    assert m.consumer_ids("G") == ["remoting-c"]


def test_heartbeat_client_addr_is_checked() -> None:
    base = {"clientID": "c1", "consumerDataSet": [], "producerDataSet": []}
    assert HeartbeatData.from_json(base).client_addr is None
    assert HeartbeatData.from_json({**base, "clientAddr": "192.0.2.1:5"}).client_addr == "192.0.2.1:5"
    for bad in (5, "", "x" * 301):
        with pytest.raises(ProtocolError):
            HeartbeatData.from_json({**base, "clientAddr": bad})


def test_expiry_after_channel_expired_timeout() -> None:
    m, rec = consumers()
    a, b = FakeChannel(), FakeChannel()
    register(m, a, "c1", now_ms=0)
    register(m, b, "c2", now_ms=60_000)
    rec.calls.clear()
    assert m.scan_expired(120_000) == []
    expired = m.scan_expired(120_001)
    assert [(e.group, e.client_id, e.channel) for e in expired] == [("G", "c1", a)]
    assert not a.closed, "closing is the caller's job"
    assert m.consumer_ids("G") == ["c2"]
    assert rec.calls == [("G", [b.id])]
    register(m, b, "c2", now_ms=170_000)
    assert m.scan_expired(290_000) == []
    assert len(m.scan_expired(290_001)) == 1
    assert m.groups() == []


def test_reconnected_client_is_listed_once() -> None:
    m, _ = consumers()
    old, new = FakeChannel(), FakeChannel()
    register(m, old, "c1", now_ms=0)
    register(m, new, "c1", now_ms=10)
    assert m.consumer_ids("G") == ["c1"]
    assert m.find_channel("G", "c1") is new
    assert m.find_channel("G", "nobody") is None


def test_compensated_subscriptions_expire() -> None:
    m, _ = consumers()
    sub = build_subscription("T", "a", None, 1)
    m.compensate_subscription("PullGroup", sub, now_ms=0)
    assert m.subscription("PullGroup", "T") == sub
    assert m.subscription("PullGroup", "T", include_compensated=False) is None
    m.scan_expired(600_000)
    assert m.subscription("PullGroup", "T") == sub
    m.scan_expired(600_001)
    assert m.subscription("PullGroup", "T") is None


def test_group_info_for_admin() -> None:
    m, _ = consumers()
    ch = FakeChannel(remote_addr="10.0.0.9:4242")
    register(m, ch, "c1", [build_subscription("T", "a||b", None, 5)])
    info = m.group_info("G")
    assert info is not None
    (member,) = info.members
    assert (member.client_id, member.client_addr, member.language, member.version) == (
        "c1",
        "10.0.0.9:4242",
        "JAVA",
        401,
    )
    body = info.to_consumer_connection_json()
    assert body["connectionSet"] == [
        {"clientAddr": "10.0.0.9:4242", "clientId": "c1", "language": "JAVA", "version": 401}
    ]
    assert body["consumeType"] == "CONSUME_PASSIVELY" and body["messageModel"] == "CLUSTERING"
    assert body["consumeFromWhere"] == "CONSUME_FROM_LAST_OFFSET"
    assert body["subscriptionTable"]["T"]["tagsSet"] == ["a", "b"]


def test_failing_listener_does_not_break_registration(caplog) -> None:
    def boom(group: str, channels: list[ChannelLike]) -> None:
        raise RuntimeError("boom")

    m = ConsumerManager(BrokerConfig(), on_change=boom)
    assert register(m, FakeChannel(), "c1").changed
    assert m.consumer_ids("G") == ["c1"]
    assert "listener failed" in caplog.text


class ConsumerSequences(RuleBasedStateMachine):
    """Any register/unregister/close/expire sequence keeps consumer ids equal to a simple model."""

    def __init__(self) -> None:
        super().__init__()
        self.manager = ConsumerManager(BrokerConfig(channel_expired_timeout=100))
        self.channels = [FakeChannel() for _ in range(4)]
        self.now = 0
        # model: group → (channel id, client id) → last heartbeat
        self.model: dict[str, dict[tuple[int, str], int]] = {}

    @rule(group=st.sampled_from(["A", "B"]), ch=st.integers(0, 3), client=st.sampled_from(["c1", "c2", "c3"]))
    def heartbeat(self, group: str, ch: int, client: str) -> None:
        channel = self.channels[ch]
        register(self.manager, channel, client, now_ms=self.now, group=group)
        self.model.setdefault(group, {})[(channel.id, client)] = self.now

    @rule(group=st.sampled_from(["A", "B"]), ch=st.integers(0, 3), client=st.sampled_from(["c1", "c2", "c3"]))
    def unregister(self, group: str, ch: int, client: str) -> None:
        channel = self.channels[ch]
        removed = self.manager.unregister_consumer(group, channel, client)
        assert removed == ((channel.id, client) in self.model.get(group, {}))
        self.model.get(group, {}).pop((channel.id, client), None)

    @rule(ch=st.integers(0, 3))
    def close(self, ch: int) -> None:
        channel = self.channels[ch]
        left = self.manager.channel_closed(channel)
        assert sorted(left) == sorted(
            g for g, ms in self.model.items() if any(k[0] == channel.id for k in ms)
        )
        for members in self.model.values():
            for key in [k for k in members if k[0] == channel.id]:
                del members[key]

    @rule(dt=st.integers(0, 150))
    def time_passes(self, dt: int) -> None:
        self.now += dt
        expired = self.manager.scan_expired(self.now)
        expected = sorted(
            (g, key)
            for g, members in self.model.items()
            for key, seen in members.items()
            if self.now - seen > 100
        )
        assert sorted((e.group, (e.channel.id, e.client_id)) for e in expired) == expected
        for g, key in expected:
            del self.model[g][key]

    @invariant()
    def ids_match_the_model(self) -> None:
        for group in ("A", "B"):
            expected = sorted({client for _, client in self.model.get(group, {})})
            assert self.manager.consumer_ids(group) == expected
        assert self.manager.groups() == sorted(g for g, chans in self.model.items() if chans)


TestConsumerSequences = ConsumerSequences.TestCase
TestConsumerSequences.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


# -- producers --------------------------------------------------------------------------------------------
def test_producers() -> None:
    m = ProducerManager(BrokerConfig())
    a, b = FakeChannel(), FakeChannel()
    assert m.register_producer("PG", a, "p1", "JAVA", 401, 0)
    assert not m.register_producer("PG", a, "p1", "JAVA", 401, 50_000)
    assert m.register_producer("PG", b, "p2", "NODE_JS", 0, 100_000)
    assert m.group_online("PG")
    picks = {m.available_channel("PG") for _ in range(4)}
    assert picks == {a, b}, "back-checks rotate over the group's channels"
    assert m.find_channel("p2") is b and m.find_channel("zz") is None
    assert [c.client_addr for c in m.producer_table()["PG"]] == ["192.0.2.7:50000"] * 2
    expired = m.scan_expired(170_001)
    assert [(e.client_id, e.channel) for e in expired] == [("p1", a)]
    assert m.channel_closed(b) == ["PG"]
    assert not m.group_online("PG") and m.available_channel("PG") is None
    m.register_producer("PG", a, "p1", "JAVA", 401, 0)
    assert m.unregister_producer("PG", a) and not m.unregister_producer("PG", a)
