"""Pure pieces of the proxy's client registration: languages, peer addresses, consumer heartbeat bodies."""

from __future__ import annotations

from orbitmq.broker.heartbeat import ConsumeType, HeartbeatData
from orbitmq.proxy.registration import ConsumerMember, remoting_language
from orbitmq.proxy.service import peer_address


def test_grpc_languages_map_to_remoting_language_codes() -> None:
    assert remoting_language("PYTHON") == "PYTHON"
    assert remoting_language("NODE_JS") == "NODE_JS"
    assert remoting_language("GOLANG") == "GO"
    assert remoting_language("DOT_NET") == "DOTNET"
    assert remoting_language("KOTLIN") == "OTHER"
    assert remoting_language("") == "OTHER"


def test_peer_addresses_lose_their_scheme() -> None:
    assert peer_address("ipv4:10.0.0.1:5000") == "10.0.0.1:5000"
    assert peer_address("ipv6:[::1]:5000") == "[::1]:5000"
    assert peer_address("unix:/tmp/sock") == "unix:/tmp/sock"
    assert peer_address("") == ""


def test_consumer_heartbeat_body_is_what_the_broker_parses() -> None:
    m = ConsumerMember("cid-1", "G", {"T": ("TAG", "a || b"), "S": ("SQL92", "x > 1")}, "10.0.0.1:5000")
    m.sub_version = 42
    hb = HeartbeatData.from_json(m.heartbeat_body())
    assert hb.client_id == "cid-1" and hb.client_addr == "10.0.0.1:5000" and not hb.producer_groups
    [consumer] = hb.consumers
    assert consumer.group_name == "G" and consumer.consume_type is ConsumeType.CONSUME_POP
    subs = {s.topic: s for s in consumer.subscriptions}
    assert subs["T"].tags_set == ("a", "b") and len(subs["T"].code_set) == 2 and subs["T"].sub_version == 42
    assert (
        subs["S"].expression_type == "SQL92" and subs["S"].sub_string == "x > 1" and subs["S"].tags_set == ()
    )
    assert "clientAddr" not in ConsumerMember("cid-2", "G", {}).heartbeat_body()
