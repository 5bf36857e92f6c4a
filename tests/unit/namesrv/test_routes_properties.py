"""Property tests: any sequence of registrations, unregistrations, expiries and deletions keeps the route
table consistent, and expiry removes exactly the silent brokers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from orbitmq.namesrv.routes import BrokerRegistration, DataVersion, RouteTable, TopicConfig

T0 = 1_700_000_000_000
NAMES = ["broker-a", "broker-b", "broker-c"]
ADDRS = [f"10.0.0.{i}:10911" for i in range(1, 5)]
CLUSTERS = ["c1", "c2"]
TOPICS = ["t1", "t2", "t3"]

topic_configs = st.lists(
    st.builds(
        TopicConfig, st.sampled_from(TOPICS), st.integers(1, 8), st.integers(1, 8), st.sampled_from([2, 4, 6])
    ),
    max_size=3,
    unique_by=lambda tc: tc.topic_name,
).map(tuple)

registrations = st.builds(
    BrokerRegistration,
    cluster_name=st.sampled_from(CLUSTERS),
    broker_name=st.sampled_from(NAMES),
    broker_addr=st.sampled_from(ADDRS),
    broker_id=st.integers(0, 2),
    data_version=st.builds(DataVersion, st.integers(0, 2), st.just(T0), st.integers(0, 3)),
    topic_configs=topic_configs,
    enable_acting_master=st.sampled_from([None, False, True]),
)

ops = st.one_of(
    st.tuples(st.just("register"), registrations, st.integers(0, 2)),
    st.tuples(
        st.just("unregister"), st.sampled_from(CLUSTERS), st.sampled_from(ADDRS), st.sampled_from(NAMES)
    ),
    st.tuples(st.just("advance"), st.integers(0, 200_000)),
    st.tuples(st.just("delete"), st.sampled_from(TOPICS), st.sampled_from([None, *CLUSTERS])),
    st.tuples(st.just("close"), st.integers(0, 2)),
    st.tuples(st.just("wipe"), st.sampled_from(NAMES)),
)


def check_routes(t: RouteTable) -> None:
    t.check_invariants()
    for topic in TOPICS:
        route = t.route_for_topic(topic)
        if topic not in t.topics:
            assert route is None
            continue
        assert route is not None
        names = [b["brokerName"] for b in route["brokerDatas"]]
        assert names == sorted(names) == [q["brokerName"] for q in route["queueDatas"]]
        assert all(
            b["brokerAddrs"] and all(isinstance(k, str) for k in b["brokerAddrs"])
            for b in route["brokerDatas"]
        )


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=40))
def test_any_operation_sequence_keeps_the_table_consistent(seq: list[tuple]) -> None:  # type: ignore[type-arg]
    t = RouteTable()
    now = T0
    channels = [object(), object(), object()]
    for op in seq:
        kind = op[0]
        if kind == "register":
            r = t.register_broker(op[1], now, channels[op[2]])
            reg = op[1]
            if not r.rejected:
                assert t.brokers[reg.broker_name].broker_addrs[reg.broker_id] == reg.broker_addr
        elif kind == "unregister":
            _, cluster, addr, name = op
            t.unregister_broker(cluster, addr, name)
            bd = t.brokers.get(name)
            assert bd is None or addr not in bd.broker_addrs.values()
            assert t.data_version(cluster, addr) is None
        elif kind == "advance":
            now += op[1]
            for gone in t.scan_not_active_brokers(now):
                assert t.data_version(gone.cluster_name, gone.broker_addr) is None
            assert all(li.last_update_ms + li.heartbeat_timeout_ms >= now for li in t.live.values())
        elif kind == "delete":
            t.delete_topic(op[1], op[2])
            if op[2] is None:
                assert op[1] not in t.topics
        elif kind == "close":
            t.on_channel_destroy(channels[op[1]])
            assert all(li.channel is not channels[op[1]] for li in t.live.values())
        else:
            t.wipe_write_perm(op[1])
        check_routes(t)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 300_000), st.sampled_from([None, 30_000, 120_000])), min_size=1, max_size=8
    ),
    st.integers(0, 500_000),
)
def test_expiry_removes_exactly_the_silent_brokers(
    brokers: list[tuple[int, int | None]], now_offset: int
) -> None:
    t = RouteTable(broker_channel_expired_time_ms=120_000)
    deadline = {}
    for i, (at, timeout) in enumerate(brokers):
        addr = f"10.0.0.{i}:10911"
        reg = BrokerRegistration(
            "c", f"b{i}", addr, 0, topic_configs=(TopicConfig(f"t{i}"),), heartbeat_timeout_ms=timeout
        )
        t.register_broker(reg, T0 + at)
        deadline[addr] = T0 + at + (timeout or 120_000)
    now = T0 + now_offset
    gone = {g.broker_addr for g in t.scan_not_active_brokers(now)}
    assert gone == {a for a, d in deadline.items() if d < now}
    assert {k.broker_addr for k in t.live} == set(deadline) - gone
    assert set(t.topic_list()) == {f"t{i}" for i in range(len(brokers)) if f"10.0.0.{i}:10911" not in gone}
    t.check_invariants()
