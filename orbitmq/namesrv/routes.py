"""The NameServer's route table: pure state, no I/O, no asyncio (RocketMQ's ``RouteInfoManager``).

Four tables, as in RocketMQ 5.x:

- ``brokers``:  broker name → :class:`BrokerData` (cluster, broker id → address);
- ``topics``:   topic → broker name → :class:`QueueData` (queue numbers, perm, topicSysFlag);
- ``clusters``: cluster name → broker names;
- ``live``:     (cluster, broker address) → :class:`BrokerLiveInfo` (last heard from, data version,
  HA address, the connection it registered over).

Time comes in as ``now_ms`` arguments, and the connection is an opaque token compared with ``==``, so
every operation is a plain function of the state and its arguments; the app carries out what they return
(log lines, closing connections). The JSON-shaped outputs (:meth:`RouteTable.route_for_topic`,
:meth:`RouteTable.cluster_info`) are dicts ready for ``orjson.dumps``: map keys are strings, both route
arrays are sorted by broker name.

Invariants kept by every operation (checked by :meth:`RouteTable.check_invariants`): a cluster lists a
broker name exactly when that broker's data names the cluster; no cluster, broker address map or topic
is ever empty; queue data exists only for known broker names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final

__all__ = [
    "BROKER_CHANNEL_EXPIRED_TIME_MS",
    "MASTER_ID",
    "PERM_INHERIT",
    "PERM_PRIORITY",
    "PERM_READ",
    "PERM_WRITE",
    "BrokerData",
    "BrokerLiveInfo",
    "BrokerRegistration",
    "DataVersion",
    "QueueData",
    "RegisterResult",
    "RouteTable",
    "TopicConfig",
    "UnregisteredBroker",
]

#: A broker not heard from for this long is removed (RocketMQ ``brokerChannelExpiredTime``, 120 s).
BROKER_CHANNEL_EXPIRED_TIME_MS: Final = 120_000
#: Broker id of a master (``MixAll.MASTER_ID``).
MASTER_ID: Final = 0
#: ``PermName`` bits.
PERM_PRIORITY: Final = 8
PERM_READ: Final = 4
PERM_WRITE: Final = 2
PERM_INHERIT: Final = 1


@dataclass(frozen=True, slots=True)
class DataVersion:
    """A broker's topic-config version; the NameServer compares it to skip unchanged registrations."""

    state_version: int = 0
    timestamp: int = 0
    counter: int = 0

    def to_json(self) -> dict[str, int]:
        return {"counter": self.counter, "stateVersion": self.state_version, "timestamp": self.timestamp}


@dataclass(frozen=True, slots=True)
class TopicConfig:
    """The part of a broker's ``TopicConfig`` the NameServer keeps (Java defaults: 16/16 queues, RW)."""

    topic_name: str
    read_queue_nums: int = 16
    write_queue_nums: int = 16
    perm: int = PERM_READ | PERM_WRITE
    topic_sys_flag: int = 0


@dataclass(frozen=True, slots=True)
class QueueData:
    broker_name: str
    read_queue_nums: int
    write_queue_nums: int
    perm: int
    topic_sys_flag: int = 0

    @classmethod
    def of(cls, broker_name: str, tc: TopicConfig) -> QueueData:
        return cls(broker_name, tc.read_queue_nums, tc.write_queue_nums, tc.perm, tc.topic_sys_flag)

    def to_json(self) -> dict[str, Any]:
        return {
            "brokerName": self.broker_name,
            "perm": self.perm,
            "readQueueNums": self.read_queue_nums,
            "topicSysFlag": self.topic_sys_flag,
            "writeQueueNums": self.write_queue_nums,
        }


@dataclass(slots=True)
class BrokerData:
    cluster: str
    broker_name: str
    broker_addrs: dict[int, str] = field(default_factory=dict)
    enable_acting_master: bool = False
    zone_name: str | None = None

    def to_json(self) -> dict[str, Any]:
        # Quoted keys: both ali-ons (JSON2) and Java (fastjson) accept them (section 5).
        out: dict[str, Any] = {
            "brokerAddrs": {str(i): self.broker_addrs[i] for i in sorted(self.broker_addrs)},
            "brokerName": self.broker_name,
            "cluster": self.cluster,
            "enableActingMaster": self.enable_acting_master,
        }
        if self.zone_name is not None:
            out["zoneName"] = self.zone_name
        return out


@dataclass(slots=True)
class BrokerLiveInfo:
    last_update_ms: int
    heartbeat_timeout_ms: int
    data_version: DataVersion
    ha_server_addr: str
    #: The connection the broker registered over (opaque; compared with ``==``).
    channel: object = None


@dataclass(frozen=True, slots=True)
class BrokerRegistration:
    """One REGISTER_BROKER request: its header fields and its decoded body."""

    cluster_name: str
    broker_name: str
    broker_addr: str
    broker_id: int
    ha_server_addr: str = ""
    data_version: DataVersion = DataVersion()
    topic_configs: tuple[TopicConfig, ...] = ()
    filter_server_list: tuple[str, ...] = ()
    zone_name: str | None = None
    #: ``heartbeatTimeoutMillis`` header; None = the NameServer's ``brokerChannelExpiredTime``.
    heartbeat_timeout_ms: int | None = None
    #: ``enableActingMaster`` header; None = an old (4.x) broker that does not send it.
    enable_acting_master: bool | None = None


@dataclass(frozen=True, slots=True)
class RegisterResult:
    #: For a slave: its master's HA address and address (the Java broker reads both).
    ha_server_addr: str | None = None
    master_addr: str | None = None
    #: True if routes or cluster membership changed.
    changed: bool = False
    #: True if this (cluster, address) was not registered before: the app logs it.
    new_broker: bool = False
    #: True if ignored because another address holds this broker id with a newer state version.
    rejected: bool = False


@dataclass(frozen=True, slots=True)
class UnregisteredBroker:
    cluster_name: str
    broker_addr: str
    broker_name: str | None
    broker_id: int | None
    channel: object = None


@dataclass(frozen=True, slots=True)
class _AddrKey:
    cluster_name: str
    broker_addr: str


class RouteTable:
    """Broker registrations and topic routes. Not thread-safe: one event loop owns it."""

    def __init__(self, broker_channel_expired_time_ms: int = BROKER_CHANNEL_EXPIRED_TIME_MS) -> None:
        self.default_timeout_ms = broker_channel_expired_time_ms
        self.brokers: dict[str, BrokerData] = {}
        self.topics: dict[str, dict[str, QueueData]] = {}
        self.clusters: dict[str, set[str]] = {}
        self.live: dict[_AddrKey, BrokerLiveInfo] = {}
        self.filter_servers: dict[_AddrKey, list[str]] = {}

    # -- registration ----------------------------------------------------------------------------------
    def register_broker(
        self,
        reg: BrokerRegistration,
        now_ms: int,
        channel: object = None,
        *,
        delete_topic_with_broker_registration: bool = False,
    ) -> RegisterResult:
        """Record a broker's registration (every 30 s from each broker) and the topics it serves."""
        key = _AddrKey(reg.cluster_name, reg.broker_addr)
        changed = self._join_cluster(reg.cluster_name, reg.broker_name)
        bd = self.brokers.get(reg.broker_name)
        register_first = bd is None
        if bd is None:
            bd = self.brokers[reg.broker_name] = BrokerData(reg.cluster_name, reg.broker_name)
        bd.enable_acting_master = bool(reg.enable_acting_master)
        bd.zone_name = reg.zone_name

        # One address has one broker id: a slave promoted to master drops its old id first.
        for bid in [i for i, a in bd.broker_addrs.items() if a == reg.broker_addr and i != reg.broker_id]:
            del bd.broker_addrs[bid]
            changed = True

        old_addr = bd.broker_addrs.get(reg.broker_id)
        if old_addr is not None and old_addr != reg.broker_addr:
            old_live = self.live.get(_AddrKey(reg.cluster_name, old_addr))
            if old_live is not None and old_live.data_version.state_version > reg.data_version.state_version:
                self.live.pop(key, None)
                self._prune_broker(bd)
                return RegisterResult(changed=changed, rejected=True)

        bd.broker_addrs[reg.broker_id] = reg.broker_addr
        changed = changed or old_addr != reg.broker_addr
        register_first = register_first or old_addr is None

        is_master = reg.broker_id == MASTER_ID
        is_prime_slave = (
            reg.enable_acting_master is not None and not is_master and reg.broker_id == min(bd.broker_addrs)
        )
        if is_master or is_prime_slave:
            version_changed = self._data_version_changed(key, reg.data_version)
            if delete_topic_with_broker_registration:
                keep = {tc.topic_name for tc in reg.topic_configs}
                for topic in [
                    t for t, qds in self.topics.items() if reg.broker_name in qds and t not in keep
                ]:
                    changed = self._remove_queue_data(topic, reg.broker_name) or changed
            for tc in reg.topic_configs:
                if (
                    register_first
                    or version_changed
                    or reg.broker_name not in self.topics.get(tc.topic_name, {})
                ):
                    if is_prime_slave and bd.enable_acting_master:
                        tc = replace(tc, perm=tc.perm & ~PERM_WRITE)
                    changed = (
                        self._put_queue_data(tc.topic_name, QueueData.of(reg.broker_name, tc)) or changed
                    )

        previous = self.live.get(key)
        self.live[key] = BrokerLiveInfo(
            last_update_ms=now_ms,
            heartbeat_timeout_ms=reg.heartbeat_timeout_ms or self.default_timeout_ms,
            data_version=reg.data_version,
            ha_server_addr=reg.ha_server_addr,
            channel=channel,
        )
        if reg.filter_server_list:
            self.filter_servers[key] = list(reg.filter_server_list)
        else:
            self.filter_servers.pop(key, None)

        ha_addr = master_addr = None
        if not is_master and MASTER_ID in bd.broker_addrs:
            master_live = self.live.get(_AddrKey(reg.cluster_name, bd.broker_addrs[MASTER_ID]))
            if master_live is not None:
                ha_addr, master_addr = master_live.ha_server_addr, bd.broker_addrs[MASTER_ID]
        return RegisterResult(ha_addr, master_addr, changed=changed, new_broker=previous is None)

    def register_topic(self, topic: str, queue_datas: Iterable[QueueData]) -> bool:
        """REGISTER_TOPIC_IN_NAMESRV: add routes for ``topic``; refused (False) if a broker is unknown."""
        qds = list(queue_datas)
        if not qds or any(qd.broker_name not in self.brokers for qd in qds):
            return False
        for qd in qds:
            self._put_queue_data(topic, qd)
        return True

    def unregister_broker(self, cluster_name: str, broker_addr: str, broker_name: str) -> bool:
        """UNREGISTER_BROKER (or a lost connection / expiry): forget one broker address."""
        key = _AddrKey(cluster_name, broker_addr)
        removed = self.live.pop(key, None) is not None
        self.filter_servers.pop(key, None)
        bd = self.brokers.get(broker_name)
        if bd is None:
            return removed
        for bid in [i for i, a in bd.broker_addrs.items() if a == broker_addr]:
            del bd.broker_addrs[bid]
            removed = True
        if not self._prune_broker(bd) and bd.enable_acting_master and min(bd.broker_addrs) > MASTER_ID:
            # The master is gone and a slave acts for it: its queues become read-only.
            self.wipe_write_perm(broker_name)
        return removed

    def scan_not_active_brokers(self, now_ms: int) -> list[UnregisteredBroker]:
        """Remove every broker address silent for longer than its heartbeat timeout; return them."""
        expired = [k for k, li in self.live.items() if li.last_update_ms + li.heartbeat_timeout_ms < now_ms]
        return [self._unregister_addr(k) for k in expired]

    def on_channel_destroy(self, channel: object) -> list[UnregisteredBroker]:
        """A connection closed: remove the broker addresses whose latest registration came over it."""
        keys = [k for k, li in self.live.items() if li.channel is not None and li.channel == channel]
        return [self._unregister_addr(k) for k in keys]

    def touch(self, cluster_name: str, broker_addr: str, now_ms: int) -> None:
        """QUERY_DATA_VERSION counts as a sign of life (``updateBrokerInfoUpdateTimestamp``)."""
        li = self.live.get(_AddrKey(cluster_name, broker_addr))
        if li is not None:
            li.last_update_ms = now_ms

    def data_version(self, cluster_name: str, broker_addr: str) -> DataVersion | None:
        li = self.live.get(_AddrKey(cluster_name, broker_addr))
        return li.data_version if li is not None else None

    def is_data_version_changed(self, cluster_name: str, broker_addr: str, version: DataVersion) -> bool:
        return self._data_version_changed(_AddrKey(cluster_name, broker_addr), version)

    # -- topics ----------------------------------------------------------------------------------------
    def delete_topic(self, topic: str, cluster_name: str | None = None) -> bool:
        """DELETE_TOPIC_IN_NAMESRV: drop the topic's routes (only this cluster's brokers, if given)."""
        if not cluster_name:
            return self.topics.pop(topic, None) is not None
        removed = False
        for name in self.clusters.get(cluster_name, ()):
            removed = self._remove_queue_data(topic, name) or removed
        return removed

    def wipe_write_perm(self, broker_name: str) -> int:
        """WIPE_WRITE_PERM_OF_BROKER: clear the write bit of the broker's queues; returns topics touched."""
        return self._set_perm(broker_name, lambda perm: perm & ~PERM_WRITE)

    def add_write_perm(self, broker_name: str) -> int:
        """ADD_WRITE_PERM_OF_BROKER: set the broker's queues to read+write (as Java does)."""
        return self._set_perm(broker_name, lambda _perm: PERM_READ | PERM_WRITE)

    # -- queries ---------------------------------------------------------------------------------------
    def route_for_topic(self, topic: str) -> dict[str, Any] | None:
        """TopicRouteData (section 5.1), or None if no known broker serves the topic."""
        qds = self.topics.get(topic)
        if not qds:
            return None
        names = sorted(n for n in qds if n in self.brokers)
        if not names:
            return None
        return {
            "brokerDatas": [self.brokers[n].to_json() for n in names],
            "filterServerTable": self._filter_server_table(names),
            "queueDatas": [qds[n].to_json() for n in sorted(qds)],
        }

    def cluster_info(self) -> dict[str, Any]:
        """ClusterInfo (section 5.6)."""
        return {
            "brokerAddrTable": {n: self.brokers[n].to_json() for n in sorted(self.brokers)},
            "clusterAddrTable": {c: sorted(names) for c, names in sorted(self.clusters.items())},
        }

    def topic_list(self) -> list[str]:
        return sorted(self.topics)

    def topics_by_cluster(self, cluster_name: str) -> list[str]:
        names = self.clusters.get(cluster_name, set())
        return sorted(t for t, qds in self.topics.items() if not names.isdisjoint(qds))

    def system_topic_list(self) -> tuple[list[str], str | None]:
        """Cluster and broker names (brokers create topics named after both) and one broker address."""
        topics: list[str] = []
        for cluster, names in sorted(self.clusters.items()):
            topics.append(cluster)
            topics.extend(sorted(names))
        addr = next((bd.broker_addrs[min(bd.broker_addrs)] for bd in self.brokers.values()), None)
        return topics, addr

    def check_invariants(self) -> None:
        """Raise AssertionError if the tables disagree with each other (used by tests)."""
        for cluster, names in self.clusters.items():
            assert names, f"empty cluster {cluster}"
            for n in names:
                assert n in self.brokers and self.brokers[n].cluster == cluster, (cluster, n)
        for name, bd in self.brokers.items():
            assert bd.broker_name == name and bd.broker_addrs, name
            assert name in self.clusters.get(bd.cluster, ()), (bd.cluster, name)
            assert len(set(bd.broker_addrs.values())) == len(bd.broker_addrs), bd
        for topic, qds in self.topics.items():
            assert qds, f"empty topic {topic}"
            for n, qd in qds.items():
                assert qd.broker_name == n and n in self.brokers, (topic, n)

    # -- internals -------------------------------------------------------------------------------------
    def _join_cluster(self, cluster_name: str, broker_name: str) -> bool:
        bd = self.brokers.get(broker_name)
        changed = False
        if bd is not None and bd.cluster != cluster_name:
            # The broker moved to another cluster: keep one cluster per broker name.
            self._leave_cluster(bd.cluster, broker_name)
            bd.cluster = cluster_name
            changed = True
        names = self.clusters.setdefault(cluster_name, set())
        if broker_name not in names:
            names.add(broker_name)
            changed = True
        return changed

    def _leave_cluster(self, cluster_name: str, broker_name: str) -> None:
        names = self.clusters.get(cluster_name)
        if names is not None:
            names.discard(broker_name)
            if not names:
                del self.clusters[cluster_name]

    def _prune_broker(self, bd: BrokerData) -> bool:
        """Drop a broker name that has no address left, with its cluster entry and queue data."""
        if bd.broker_addrs:
            return False
        del self.brokers[bd.broker_name]
        self._leave_cluster(bd.cluster, bd.broker_name)
        for topic in [t for t, qds in self.topics.items() if bd.broker_name in qds]:
            self._remove_queue_data(topic, bd.broker_name)
        return True

    def _unregister_addr(self, key: _AddrKey) -> UnregisteredBroker:
        channel = self.live[key].channel
        for bd in self.brokers.values():
            if bd.cluster != key.cluster_name:
                continue
            for bid, addr in bd.broker_addrs.items():
                if addr == key.broker_addr:
                    self.unregister_broker(key.cluster_name, key.broker_addr, bd.broker_name)
                    return UnregisteredBroker(key.cluster_name, key.broker_addr, bd.broker_name, bid, channel)
        # Its broker id was taken over by another address: only the liveness entry is left.
        del self.live[key]
        self.filter_servers.pop(key, None)
        return UnregisteredBroker(key.cluster_name, key.broker_addr, None, None, channel)

    def _data_version_changed(self, key: _AddrKey, version: DataVersion) -> bool:
        li = self.live.get(key)
        return li is None or li.data_version != version

    def _put_queue_data(self, topic: str, qd: QueueData) -> bool:
        qds = self.topics.setdefault(topic, {})
        if qds.get(qd.broker_name) == qd:
            return False
        qds[qd.broker_name] = qd
        return True

    def _remove_queue_data(self, topic: str, broker_name: str) -> bool:
        qds = self.topics.get(topic)
        if qds is None or qds.pop(broker_name, None) is None:
            return False
        if not qds:
            del self.topics[topic]
        return True

    def _set_perm(self, broker_name: str, new_perm: Callable[[int], int]) -> int:
        count = 0
        for qds in self.topics.values():
            qd = qds.get(broker_name)
            if qd is not None:
                qds[broker_name] = replace(qd, perm=new_perm(qd.perm))
                count += 1
        return count

    def _filter_server_table(self, names: Iterable[str]) -> dict[str, list[str]]:
        table: dict[str, list[str]] = {}
        for n in names:
            bd = self.brokers[n]
            for addr in bd.broker_addrs.values():
                servers = self.filter_servers.get(_AddrKey(bd.cluster, addr))
                if servers:
                    table[addr] = list(servers)
        return table
