"""NameServer request handlers: one per request code of remoting-protocol.md section 2.3.

Each handler decodes its header and body, calls the pure :class:`RouteTable` / :class:`KvConfigTable`,
and encodes the answer. Missing header fields raise ``ProtocolError``, which the dispatch layer answers
with SYSTEM_ERROR and the error text, as Java's header decoding does.
"""

from __future__ import annotations

import logging
import zlib

from orbitmq.core.clock import Clock
from orbitmq.core.errors import BrokerError, ProtocolError
from orbitmq.namesrv.bodies import (
    decode_data_version,
    decode_register_broker_body,
    decode_topic_route_queue_datas,
    encode_json,
    encode_kv_table,
    encode_topic_list,
)
from orbitmq.namesrv.config import NamesrvConfig
from orbitmq.namesrv.kvconfig import NAMESPACE_ORDER_TOPIC_CONFIG, KvConfigTable
from orbitmq.namesrv.routes import BrokerRegistration, RouteTable
from orbitmq.net import Connection, DispatchTable, RequestHandler
from orbitmq.protocol.codes import RequestCode, ResponseCode
from orbitmq.protocol.command import RemotingCommand

__all__ = ["NamesrvHandlers"]

log = logging.getLogger("orbitmq.namesrv")


def _bool(value: bool) -> str:
    return "true" if value else "false"


class NamesrvHandlers:
    """The request handlers of one NameServer, over its route table and KV config."""

    def __init__(self, config: NamesrvConfig, routes: RouteTable, kv: KvConfigTable, clock: Clock) -> None:
        self.config = config
        self.routes = routes
        self.kv = kv
        self.clock = clock

    def table(self) -> dict[RequestCode, RequestHandler]:
        return {
            RequestCode.PUT_KV_CONFIG: self.put_kv_config,
            RequestCode.GET_KV_CONFIG: self.get_kv_config,
            RequestCode.DELETE_KV_CONFIG: self.delete_kv_config,
            RequestCode.GET_KVLIST_BY_NAMESPACE: self.get_kv_list_by_namespace,
            RequestCode.REGISTER_BROKER: self.register_broker,
            RequestCode.UNREGISTER_BROKER: self.unregister_broker,
            RequestCode.QUERY_DATA_VERSION: self.query_data_version,
            RequestCode.GET_ROUTEINFO_BY_TOPIC: self.get_route_info_by_topic,
            RequestCode.GET_BROKER_CLUSTER_INFO: self.get_broker_cluster_info,
            RequestCode.WIPE_WRITE_PERM_OF_BROKER: self.wipe_write_perm_of_broker,
            RequestCode.ADD_WRITE_PERM_OF_BROKER: self.add_write_perm_of_broker,
            RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER: self.get_all_topic_list,
            RequestCode.GET_TOPICS_BY_CLUSTER: self.get_topics_by_cluster,
            RequestCode.DELETE_TOPIC_IN_NAMESRV: self.delete_topic_in_namesrv,
            RequestCode.REGISTER_TOPIC_IN_NAMESRV: self.register_topic_in_namesrv,
            RequestCode.GET_SYSTEM_TOPIC_LIST_FROM_NS: self.get_system_topic_list,
        }

    def register_all(self, dispatch: DispatchTable) -> None:
        for code, handler in self.table().items():
            dispatch.register(code, handler)

    # -- routes ------------------------------------------------------------------------------------------
    async def get_route_info_by_topic(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        topic = cmd.str_field("topic")
        route = self.routes.route_for_topic(topic)
        if route is None:
            return cmd.response(
                ResponseCode.TOPIC_NOT_EXIST, f"No topic route info in name server for the topic: {topic}"
            )
        if self.config.order_message_enable:
            order_conf = self.kv.get(NAMESPACE_ORDER_TOPIC_CONFIG, topic)
            if order_conf is not None:
                route["orderTopicConf"] = order_conf
        # Java answers clients older than 4.9.4 (without acceptStandardJsonOnly) with fastjson's unquoted
        # integer keys, and newer ones with quoted keys. Quoted keys are read by every client (ali-ons'
        # JSON2 and Java's fastjson alike), so one standard-JSON encoding serves both cases.
        return cmd.response(body=encode_json(route))

    async def get_broker_cluster_info(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        return cmd.response(body=encode_json(self.routes.cluster_info()))

    async def get_all_topic_list(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        if not self.config.enable_all_topic_list:
            return cmd.response(ResponseCode.SYSTEM_ERROR, "disable")
        return cmd.response(body=encode_topic_list(self.routes.topic_list()))

    async def get_topics_by_cluster(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        if not self.config.enable_topic_list:
            return cmd.response(ResponseCode.SYSTEM_ERROR, "disable")
        return cmd.response(body=encode_topic_list(self.routes.topics_by_cluster(cmd.str_field("cluster"))))

    async def get_system_topic_list(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        topics, broker_addr = self.routes.system_topic_list()
        return cmd.response(body=encode_topic_list(topics, broker_addr))

    async def delete_topic_in_namesrv(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        topic, cluster = cmd.str_field("topic"), cmd.opt_str("clusterName")
        if self.routes.delete_topic(topic, cluster or None):
            log.info(
                "topic %s deleted from routes%s (by %r)",
                topic,
                f" of cluster {cluster}" if cluster else "",
                conn,
            )
        return cmd.response()

    async def register_topic_in_namesrv(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        topic = cmd.str_field("topic")
        queue_datas = decode_topic_route_queue_datas(cmd.body_bytes())
        if queue_datas and not self.routes.register_topic(topic, queue_datas):
            # Java answers SUCCESS here too and only logs: the broker retries with its next registration.
            log.warning("register topic %s refused: it names a broker that is not registered", topic)
        return cmd.response()

    async def wipe_write_perm_of_broker(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        name = cmd.str_field("brokerName")
        count = self.routes.wipe_write_perm(name)
        log.info("wipe write perm of broker %s: %d topics (by %r)", name, count, conn)
        return cmd.response(ext_fields={"wipeTopicCount": str(count)})

    async def add_write_perm_of_broker(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        name = cmd.str_field("brokerName")
        count = self.routes.add_write_perm(name)
        log.info("add write perm of broker %s: %d topics (by %r)", name, count, conn)
        return cmd.response(ext_fields={"addTopicCount": str(count)})

    # -- brokers -----------------------------------------------------------------------------------------
    async def register_broker(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        reg = self._registration(cmd)
        result = self.routes.register_broker(
            reg,
            self.clock.now_ms(),
            conn,
            delete_topic_with_broker_registration=self.config.delete_topic_with_broker_registration,
        )
        if result.rejected:
            log.warning(
                "broker %s id %d at %s ignored: another address holds that id with a newer state version",
                reg.broker_name, reg.broker_id, reg.broker_addr,
            )  # fmt: skip
        elif result.new_broker:
            log.info(
                "broker registered: %s id %d at %s in cluster %s, %d topics (over %r)",
                reg.broker_name, reg.broker_id, reg.broker_addr, reg.cluster_name, len(reg.topic_configs), conn,
                extra={"event": "broker_registered", "broker": reg.broker_name, "addr": reg.broker_addr},
            )  # fmt: skip
        ext: dict[str, str] = {}
        if result.ha_server_addr is not None:
            ext["haServerAddr"] = result.ha_server_addr
        if result.master_addr is not None:
            ext["masterAddr"] = result.master_addr
        body = b""
        if self.config.return_order_topic_config_to_broker:
            order_conf = self.kv.namespace(NAMESPACE_ORDER_TOPIC_CONFIG)
            if order_conf is not None:
                body = encode_kv_table(order_conf)
        return cmd.response(ext_fields=ext, body=body)

    def _registration(self, cmd: RemotingCommand) -> BrokerRegistration:
        body = cmd.body_bytes()
        crc = cmd.int_field("bodyCrc32", 0)
        if crc != 0 and crc != zlib.crc32(body) & 0x7FFFFFFF:
            raise BrokerError(ResponseCode.SYSTEM_ERROR, "crc32 not match")
        try:
            decoded = decode_register_broker_body(
                body, compressed=cmd.bool_field("compressed"), broker_version=cmd.version
            )
        except ProtocolError as exc:
            raise ProtocolError(f"Failed to decode RegisterBrokerBody: {exc}") from exc
        acting = cmd.opt_str("enableActingMaster")
        return BrokerRegistration(
            cluster_name=cmd.str_field("clusterName"),
            broker_name=cmd.str_field("brokerName"),
            broker_addr=cmd.str_field("brokerAddr"),
            broker_id=cmd.int_field("brokerId"),
            ha_server_addr=cmd.ext_fields.get("haServerAddr", ""),
            data_version=decoded.data_version,
            topic_configs=decoded.topic_configs,
            filter_server_list=decoded.filter_server_list,
            zone_name=cmd.opt_str("__ZONE_NAME"),
            heartbeat_timeout_ms=cmd.opt_int("heartbeatTimeoutMillis"),
            enable_acting_master=None if acting in (None, "") else cmd.bool_field("enableActingMaster"),
        )

    async def unregister_broker(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        cluster, addr = cmd.str_field("clusterName"), cmd.str_field("brokerAddr")
        name, broker_id = cmd.str_field("brokerName"), cmd.int_field("brokerId")
        if self.routes.unregister_broker(cluster, addr, name):
            log.info("broker unregistered: %s id %d at %s in cluster %s", name, broker_id, addr, cluster,
                     extra={"event": "broker_unregistered", "broker": name, "addr": addr})  # fmt: skip
        return cmd.response()

    async def query_data_version(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        cluster, addr = cmd.str_field("clusterName"), cmd.str_field("brokerAddr")
        version = decode_data_version(cmd.body_bytes())
        changed = self.routes.is_data_version_changed(cluster, addr, version)
        self.routes.touch(cluster, addr, self.clock.now_ms())
        stored = self.routes.data_version(cluster, addr)
        body = encode_json(stored.to_json()) if stored is not None else b""
        return cmd.response(ext_fields={"changed": _bool(changed)}, body=body)

    # -- KV config ---------------------------------------------------------------------------------------
    async def put_kv_config(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        namespace, key, value = cmd.str_field("namespace"), cmd.str_field("key"), cmd.str_field("value")
        self.kv.put(namespace, key, value)
        log.info("KV config put: %s / %s = %s", namespace, key, value)
        return cmd.response()

    async def get_kv_config(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        namespace, key = cmd.str_field("namespace"), cmd.str_field("key")
        value = self.kv.get(namespace, key)
        if value is None:
            return cmd.response(
                ResponseCode.QUERY_NOT_FOUND, f"No config item, Namespace: {namespace} Key: {key}"
            )
        return cmd.response(ext_fields={"value": value})

    async def delete_kv_config(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        namespace, key = cmd.str_field("namespace"), cmd.str_field("key")
        if self.kv.delete(namespace, key):
            log.info("KV config deleted: %s / %s", namespace, key)
        return cmd.response()

    async def get_kv_list_by_namespace(self, cmd: RemotingCommand, conn: Connection) -> RemotingCommand:
        namespace = cmd.str_field("namespace")
        table = self.kv.namespace(namespace)
        if table is None:
            return cmd.response(ResponseCode.QUERY_NOT_FOUND, f"No config item, Namespace: {namespace}")
        return cmd.response(body=encode_kv_table(table))
