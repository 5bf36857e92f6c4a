"""The NameServer route table (pure state; RocketMQ's RouteInfoManager semantics)."""

from __future__ import annotations

from orbitmq.namesrv.routes import (
    PERM_READ,
    PERM_WRITE,
    BrokerRegistration,
    DataVersion,
    QueueData,
    RouteTable,
    TopicConfig,
)

T0 = 1_700_000_000_000
V1 = DataVersion(0, T0, 1)


def reg(
    name: str = "broker-a",
    addr: str = "127.0.0.1:10911",
    *,
    cluster: str = "DefaultCluster",
    broker_id: int = 0,
    topics: tuple[TopicConfig, ...] = (TopicConfig("TopicTest", 4, 4),),
    version: DataVersion = V1,
    **kw: object,
) -> BrokerRegistration:
    return BrokerRegistration(
        cluster_name=cluster,
        broker_name=name,
        broker_addr=addr,
        broker_id=broker_id,
        ha_server_addr=addr.replace("10911", "10912"),
        data_version=version,
        topic_configs=topics,
        **kw,  # type: ignore[arg-type]
    )


def test_route_has_the_exact_shape_of_topic_route_data() -> None:
    t = RouteTable()
    result = t.register_broker(reg(), T0)
    assert result.changed and result.new_broker and not result.rejected
    assert t.route_for_topic("TopicTest") == {
        "brokerDatas": [
            {
                "brokerAddrs": {"0": "127.0.0.1:10911"},
                "brokerName": "broker-a",
                "cluster": "DefaultCluster",
                "enableActingMaster": False,
            }
        ],
        "filterServerTable": {},
        "queueDatas": [
            {"brokerName": "broker-a", "perm": 6, "readQueueNums": 4, "topicSysFlag": 0, "writeQueueNums": 4}
        ],
    }
    t.check_invariants()


def test_unknown_topic_has_no_route() -> None:
    t = RouteTable()
    t.register_broker(reg(), T0)
    assert t.route_for_topic("nope") is None


def test_reregistration_with_the_same_version_changes_nothing() -> None:
    t = RouteTable()
    t.register_broker(reg(), T0)
    again = t.register_broker(reg(), T0 + 30_000)
    assert not again.changed and not again.new_broker
    assert t.live[next(iter(t.live))].last_update_ms == T0 + 30_000


def test_new_data_version_updates_queue_data() -> None:
    t = RouteTable()
    t.register_broker(reg(), T0)
    r = t.register_broker(
        reg(topics=(TopicConfig("TopicTest", 8, 8, PERM_READ),), version=DataVersion(0, T0, 2)), T0
    )
    assert r.changed
    assert t.topics["TopicTest"]["broker-a"] == QueueData("broker-a", 8, 8, PERM_READ, 0)


def test_same_version_still_adds_a_topic_missing_for_this_broker() -> None:
    # Java's isTopicConfigChanged: a topic this broker does not serve yet is always added.
    t = RouteTable()
    t.register_broker(reg(), T0)
    t.delete_topic("TopicTest")
    assert t.register_broker(reg(), T0).changed
    assert t.route_for_topic("TopicTest") is not None


def test_two_brokers_in_a_cluster_are_sorted_by_name() -> None:
    t = RouteTable()
    t.register_broker(reg("broker-b", "127.0.0.1:20911"), T0)
    t.register_broker(reg("broker-a", "127.0.0.1:10911"), T0)
    route = t.route_for_topic("TopicTest")
    assert route is not None
    assert [b["brokerName"] for b in route["brokerDatas"]] == ["broker-a", "broker-b"]
    assert [q["brokerName"] for q in route["queueDatas"]] == ["broker-a", "broker-b"]
    assert t.cluster_info()["clusterAddrTable"] == {"DefaultCluster": ["broker-a", "broker-b"]}
    t.check_invariants()


def test_slave_registration_reports_its_master_and_does_not_change_queue_data() -> None:
    t = RouteTable()
    t.register_broker(reg(), T0)
    slave = reg(addr="127.0.0.1:10921", broker_id=1, topics=(TopicConfig("TopicTest", 1, 1),))
    r = t.register_broker(slave, T0)
    assert (r.master_addr, r.ha_server_addr) == ("127.0.0.1:10911", "127.0.0.1:10912")
    assert t.topics["TopicTest"]["broker-a"].read_queue_nums == 4
    assert t.brokers["broker-a"].broker_addrs == {0: "127.0.0.1:10911", 1: "127.0.0.1:10921"}
    master = t.register_broker(reg(), T0)
    assert (master.master_addr, master.ha_server_addr) == (None, None)


def test_slave_promoted_to_master_drops_its_old_id() -> None:
    t = RouteTable()
    t.register_broker(reg(addr="127.0.0.1:10921", broker_id=1), T0)
    t.register_broker(reg(addr="127.0.0.1:10921", broker_id=0), T0)
    assert t.brokers["broker-a"].broker_addrs == {0: "127.0.0.1:10921"}
    t.check_invariants()


def test_older_state_version_for_a_taken_broker_id_is_rejected() -> None:
    t = RouteTable()
    t.register_broker(reg(version=DataVersion(5, T0, 1)), T0)
    r = t.register_broker(reg(addr="127.0.0.1:30911", version=DataVersion(3, T0, 1)), T0)
    assert r.rejected
    assert t.brokers["broker-a"].broker_addrs == {0: "127.0.0.1:10911"}
    assert {k.broker_addr for k in t.live} == {"127.0.0.1:10911"}
    t.check_invariants()


def test_unregister_removes_broker_cluster_and_its_topics() -> None:
    t = RouteTable()
    t.register_broker(reg(), T0)
    t.register_broker(reg("broker-b", "127.0.0.1:20911", topics=(TopicConfig("Other", 2, 2),)), T0)
    assert t.unregister_broker("DefaultCluster", "127.0.0.1:10911", "broker-a")
    assert t.route_for_topic("TopicTest") is None
    assert t.topic_list() == ["Other"]
    assert t.cluster_info()["clusterAddrTable"] == {"DefaultCluster": ["broker-b"]}
    assert t.unregister_broker("DefaultCluster", "127.0.0.1:20911", "broker-b")
    assert t.clusters == {} and t.brokers == {} and t.topics == {} and t.live == {}
    assert not t.unregister_broker("DefaultCluster", "127.0.0.1:20911", "broker-b")


def test_unregistering_a_slave_keeps_the_master_route() -> None:
    t = RouteTable()
    t.register_broker(reg(), T0)
    t.register_broker(reg(addr="127.0.0.1:10921", broker_id=1), T0)
    t.unregister_broker("DefaultCluster", "127.0.0.1:10921", "broker-a")
    route = t.route_for_topic("TopicTest")
    assert route is not None and route["brokerDatas"][0]["brokerAddrs"] == {"0": "127.0.0.1:10911"}


def test_acting_master_mode_wipes_write_perm_when_the_master_leaves() -> None:
    t = RouteTable()
    t.register_broker(reg(enable_acting_master=True), T0)
    t.register_broker(reg(addr="127.0.0.1:10921", broker_id=1, enable_acting_master=True), T0)
    t.unregister_broker("DefaultCluster", "127.0.0.1:10911", "broker-a")
    assert t.topics["TopicTest"]["broker-a"].perm == PERM_READ


def test_expiry_uses_the_heartbeat_timeout_and_explicit_now() -> None:
    t = RouteTable(broker_channel_expired_time_ms=120_000)
    t.register_broker(reg(), T0)
    t.register_broker(reg("broker-b", "127.0.0.1:20911"), T0 + 60_000)
    t.register_broker(reg("broker-c", "127.0.0.1:30911", heartbeat_timeout_ms=60_000), T0 + 60_000)
    assert t.scan_not_active_brokers(T0 + 120_000) == []  # exactly at the limit: still alive (strict <)
    gone = t.scan_not_active_brokers(T0 + 120_001)
    assert sorted(g.broker_name or "" for g in gone) == ["broker-a", "broker-c"]
    assert sorted(t.brokers) == ["broker-b"]
    assert [g.broker_id for g in gone] == [0, 0]
    t.check_invariants()


def test_touch_keeps_a_broker_alive() -> None:
    t = RouteTable()
    t.register_broker(reg(), T0)
    t.touch("DefaultCluster", "127.0.0.1:10911", T0 + 100_000)
    assert t.scan_not_active_brokers(T0 + 200_000) == []


def test_channel_destroy_removes_only_registrations_made_over_that_channel() -> None:
    t = RouteTable()
    conn1, conn2 = object(), object()
    t.register_broker(reg(), T0, conn1)
    t.register_broker(reg("broker-b", "127.0.0.1:20911"), T0, conn2)
    gone = t.on_channel_destroy(conn1)
    assert [(g.broker_name, g.broker_addr, g.channel) for g in gone] == [
        ("broker-a", "127.0.0.1:10911", conn1)
    ]
    assert sorted(t.brokers) == ["broker-b"]
    assert t.on_channel_destroy(object()) == []


def test_reregistering_over_a_new_channel_moves_ownership() -> None:
    t = RouteTable()
    old, new = object(), object()
    t.register_broker(reg(), T0, old)
    t.register_broker(reg(), T0, new)
    assert t.on_channel_destroy(old) == []
    assert len(t.on_channel_destroy(new)) == 1


def test_delete_topic_everywhere_or_in_one_cluster() -> None:
    t = RouteTable()
    t.register_broker(reg("a1", "127.0.0.1:1", cluster="c1"), T0)
    t.register_broker(reg("b1", "127.0.0.1:2", cluster="c2"), T0)
    assert t.topics_by_cluster("c1") == ["TopicTest"]
    assert t.delete_topic("TopicTest", "c1")
    route = t.route_for_topic("TopicTest")
    assert route is not None and [q["brokerName"] for q in route["queueDatas"]] == ["b1"]
    assert t.topics_by_cluster("c1") == []
    assert not t.delete_topic("TopicTest", "nope")
    assert t.delete_topic("TopicTest")
    assert t.topic_list() == []


def test_wipe_and_add_write_perm() -> None:
    t = RouteTable()
    t.register_broker(
        reg(topics=(TopicConfig("A", 1, 1), TopicConfig("B", 1, 1, PERM_READ | PERM_WRITE | 1))), T0
    )
    assert t.wipe_write_perm("broker-a") == 2
    assert {qds["broker-a"].perm for qds in t.topics.values()} == {PERM_READ, PERM_READ | 1}
    assert t.add_write_perm("broker-a") == 2
    assert {qds["broker-a"].perm for qds in t.topics.values()} == {PERM_READ | PERM_WRITE}
    assert t.wipe_write_perm("nope") == 0


def test_register_topic_requires_known_brokers() -> None:
    t = RouteTable()
    t.register_broker(reg(), T0)
    assert not t.register_topic("New", [QueueData("ghost", 1, 1, 6)])
    assert t.route_for_topic("New") is None
    assert t.register_topic("New", [QueueData("broker-a", 2, 2, 6)])
    route = t.route_for_topic("New")
    assert route is not None and route["queueDatas"][0]["readQueueNums"] == 2


def test_delete_topic_with_broker_registration_drops_topics_the_broker_no_longer_has() -> None:
    t = RouteTable()
    t.register_broker(reg(topics=(TopicConfig("A"), TopicConfig("B"))), T0)
    t.register_broker(reg(topics=(TopicConfig("A"),), version=DataVersion(0, T0, 2)), T0)
    assert t.topic_list() == ["A", "B"]  # default: registrations never delete
    t.register_broker(
        reg(topics=(TopicConfig("A"),), version=DataVersion(0, T0, 3)),
        T0,
        delete_topic_with_broker_registration=True,
    )
    assert t.topic_list() == ["A"]


def test_filter_servers_appear_in_the_route() -> None:
    t = RouteTable()
    t.register_broker(reg(filter_server_list=("127.0.0.1:5000",)), T0)
    route = t.route_for_topic("TopicTest")
    assert route is not None and route["filterServerTable"] == {"127.0.0.1:10911": ["127.0.0.1:5000"]}


def test_broker_moving_to_another_cluster_leaves_the_old_one() -> None:
    t = RouteTable()
    t.register_broker(reg(cluster="c1"), T0)
    t.register_broker(reg(cluster="c2"), T0)
    assert t.cluster_info()["clusterAddrTable"] == {"c2": ["broker-a"]}
    t.check_invariants()


def test_system_topic_list_names_clusters_and_brokers() -> None:
    t = RouteTable()
    assert t.system_topic_list() == ([], None)
    t.register_broker(reg(), T0)
    assert t.system_topic_list() == (["DefaultCluster", "broker-a"], "127.0.0.1:10911")


def test_data_version_queries() -> None:
    t = RouteTable()
    v = DataVersion(0, T0, 1)
    assert t.is_data_version_changed("DefaultCluster", "127.0.0.1:10911", v)
    assert t.data_version("DefaultCluster", "127.0.0.1:10911") is None
    t.register_broker(reg(version=v), T0)
    assert not t.is_data_version_changed("DefaultCluster", "127.0.0.1:10911", v)
    assert t.is_data_version_changed("DefaultCluster", "127.0.0.1:10911", DataVersion(0, T0, 2))
    assert t.data_version("DefaultCluster", "127.0.0.1:10911") == v
