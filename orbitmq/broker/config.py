"""Broker configuration: one frozen dataclass whose fields mirror RocketMQ's ``BrokerConfig`` properties.

Only :mod:`orbitmq.cli` reads files, env and flags; it turns ``key=value`` lines into a config with
:func:`broker_config_from_properties`. Keys are RocketMQ's own names so a RocketMQ ``broker.conf`` carries
over; an unknown key or a bad value is a :class:`ConfigError` that names it. The store's keys
(``storePathRootDir``, ``flushDiskType``, ``maxMessageSize`` ...) belong to ``StoreConfig``: the CLI routes
each key to the config that knows it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

from orbitmq.broker.delay_levels import DEFAULT_MESSAGE_DELAY_LEVEL, parse_delay_levels
from orbitmq.core.errors import ConfigError

__all__ = ["BROKER_PROPERTY_NAMES", "BrokerConfig", "broker_config_from_properties"]


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Every field names the RocketMQ property it mirrors (``BrokerConfig`` unless said otherwise)."""

    broker_name: str = "broker-a"  # brokerName
    broker_cluster_name: str = "DefaultCluster"  # brokerClusterName
    broker_id: int = 0  # brokerId (0 = master)
    broker_ip1: str = "127.0.0.1"  # brokerIP1: the address registered with the NameServer
    listen_port: int = 10911  # listenPort (NettyServerConfig)
    namesrv_addr: tuple[str, ...] = ()  # namesrvAddr: "host:port;host:port"
    auto_create_topic_enable: bool = (
        True  # autoCreateTopicEnable: TBW102 template exists, sends create topics
    )
    default_topic_queue_nums: int = 8  # defaultTopicQueueNums: queues of TBW102 (cap for auto-created topics)
    cluster_topic_enable: bool = (
        True  # clusterTopicEnable: the cluster-name system topic is readable/writable
    )
    broker_topic_enable: bool = True  # brokerTopicEnable: the broker-name system topic is readable/writable
    trace_topic_enable: bool = False  # traceTopicEnable: create the trace topic at start
    msg_trace_topic_name: str = "RMQ_SYS_TRACE_TOPIC"  # msgTraceTopicName
    validate_system_topic_when_update_topic: bool = True  # validateSystemTopicWhenUpdateTopic
    revive_queue_num: int = 8  # reviveQueueNum: queues of rmq_sys_REVIVE_LOG_<cluster>
    auto_create_subscription_group: bool = True  # autoCreateSubscriptionGroup
    enable_create_sys_group: bool = True  # enableCreateSysGroup: CID_RMQ_SYS_* groups are auto-created
    message_delay_level: str = DEFAULT_MESSAGE_DELAY_LEVEL  # messageDelayLevel (MessageStoreConfig)
    long_polling_enable: bool = True  # longPollingEnable
    short_polling_time_mills: int = 1000  # shortPollingTimeMills: hold time when long polling is off
    register_broker_timeout_mills: int = 6000  # registerBrokerTimeoutMills (upstream 5.x default: 24000)
    register_name_server_period: int = 30_000  # registerNameServerPeriod
    channel_expired_timeout: int = 120_000  # channelExpiredTimeout: client silent this long is dropped
    subscription_expired_timeout: int = 600_000  # subscriptionExpiredTimeout: pull-only (compensated) subs
    notify_consumer_ids_changed_enable: bool = True  # notifyConsumerIdsChangedEnable
    flush_consumer_offset_interval: int = 5000  # flushConsumerOffsetInterval (ms)
    consumer_offset_update_version_step: int = (
        500  # consumerOffsetUpdateVersionStep: commits per dataVersion bump
    )
    rebalance_lock_max_live_time: int = 60_000  # rocketmq.broker.rebalance.lockMaxLiveTime (JVM property)
    broker_permission: int = 6  # brokerPermission: PermName bits (4 READ | 2 WRITE)
    enable_property_filter: bool = False  # enablePropertyFilter: SQL92 subscriptions are served
    #: enableTopicMessageTypeCheck: refuse sends whose type (NORMAL/FIFO/DELAY/TRANSACTION, from their
    #: properties) is not the topic's message.type. Upstream has it in the *proxy* (default true there); an
    #: upstream broker never checks, hence false here.
    enable_topic_message_type_check: bool = False
    enable_mixed_message_type: bool = False  # enableMixedMessageType: topics may be created MIXED
    trace_on: bool = True  # traceOn: sent to producers as TRACE_ON
    timer_wheel_enable: bool = True  # timerWheelEnable (MessageStoreConfig): accept TIMER_* delivery times
    timer_max_delay_sec: int = 3 * 24 * 3600  # timerMaxDelaySec (MessageStoreConfig): farthest delivery time
    timer_precision_ms: int = 1000  # timerPrecisionMs (MessageStoreConfig): slot width, 100/200/500/1000
    timer_flush_interval_ms: int = 1000  # timerFlushIntervalMs (MessageStoreConfig): progress marker period
    reject_transaction_message: bool = False  # rejectTransactionMessage: refuse half messages (NO_PERMISSION)
    transaction_timeout: int = 6000  # transactionTimeOut: ms after the born time before the first back-check
    transaction_check_max: int = (
        15  # transactionCheckMax: back-checks before moving to TRANS_CHECK_MAX_TIME_TOPIC
    )
    transaction_check_interval: int = 30_000  # transactionCheckInterval: ms between back-check passes
    transaction_op_msg_max_size: int = 4096  # transactionOpMsgMaxSize: bytes of op offsets written at once
    transaction_op_batch_interval: int = 3000  # transactionOpBatchInterval: ms op offsets wait at most
    region_id: str = "DefaultRegion"  # regionId: sent to producers as MSG_REGION
    default_message_request_mode: str = "PULL"  # defaultMessageRequestMode: PULL | POP, when none was set
    default_pop_share_queue_num: int = -1  # defaultPopShareQueueNum: with a POP default (-1 = all queues)
    server_load_balancer_enable: bool = True  # serverLoadBalancerEnable: False ⇒ QUERY_ASSIGNMENT gives all
    #: useServerSideResetOffset: INVOKE_BROKER_TO_RESET_OFFSET keeps a pending reset that the next pull/pop
    #: of each queue picks up (RIP-48); false = also push RESET_CONSUMER_CLIENT_OFFSET to online clients
    #: and keep no pending reset (the 4.x way). Both ways store and persist the new offsets.
    use_server_side_reset_offset: bool = True
    # -- POP consumption (docs/pop.md) --
    revive_interval: int = 1000  # reviveInterval (ms): period of the revive scan
    enable_pop_buffer_merge: bool = False  # enablePopBufferMerge: pair CKs with ACKs in memory
    pop_ck_stay_buffer_time: int = 10_000  # popCkStayBufferTime (ms): longest a CK stays in the buffer
    pop_ck_stay_buffer_time_out: int = 3000  # popCkStayBufferTimeOut (ms): CK leaves this long before revive
    pop_ck_max_buffer_size: int = 200_000  # popCkMaxBufferSize: CKs held by the merge buffer
    pop_ck_offset_max_queue_size: int = 20_000  # popCkOffsetMaxQueueSize: async CK/ACK writes pending
    #: appendCkAsync / appendAckAsync: answer a pop (an ack) before its CK (ACK) is flushed; the offset commit
    #: still waits for the CK. Upstream defaults to false; OrbitMQ to true, from `orbitmq bench pop`
    #: (docs/BENCHMARKS.md, docs/pop.md: never lost, at most duplicates after an OS crash).
    append_ck_async: bool = True
    append_ack_async: bool = True
    pop_from_retry_probability: int = 20  # popFromRetryProbability (%): pops that look at retry first
    pop_response_return_actual_retry_topic: bool = False  # popResponseReturnActualRetryTopic
    init_pop_offset_by_check_msg_in_mem: bool = True  # initPopOffsetByCheckMsgInMem
    pop_polling_size: int = 1024  # popPollingSize: held pop requests per topic@group@queue
    max_pop_polling_size: int = 100_000  # maxPopPollingSize: held pop (and notification) requests

    def __post_init__(self) -> None:
        errors = _validate(self)
        if errors:
            raise ConfigError("; ".join(errors))

    @property
    def broker_addr(self) -> str:
        """``brokerIP1:listenPort``, the address clients and the NameServer see."""
        return f"{self.broker_ip1}:{self.listen_port}"

    @property
    def delay_levels_ms(self) -> tuple[int, ...]:
        return parse_delay_levels(self.message_delay_level)


#: RocketMQ property name → :class:`BrokerConfig` field name.
BROKER_PROPERTY_NAMES: Final[dict[str, str]] = {
    "brokerName": "broker_name",
    "brokerClusterName": "broker_cluster_name",
    "brokerId": "broker_id",
    "brokerIP1": "broker_ip1",
    "listenPort": "listen_port",
    "namesrvAddr": "namesrv_addr",
    "autoCreateTopicEnable": "auto_create_topic_enable",
    "defaultTopicQueueNums": "default_topic_queue_nums",
    "clusterTopicEnable": "cluster_topic_enable",
    "brokerTopicEnable": "broker_topic_enable",
    "traceTopicEnable": "trace_topic_enable",
    "msgTraceTopicName": "msg_trace_topic_name",
    "validateSystemTopicWhenUpdateTopic": "validate_system_topic_when_update_topic",
    "reviveQueueNum": "revive_queue_num",
    "autoCreateSubscriptionGroup": "auto_create_subscription_group",
    "enableCreateSysGroup": "enable_create_sys_group",
    "messageDelayLevel": "message_delay_level",
    "longPollingEnable": "long_polling_enable",
    "shortPollingTimeMills": "short_polling_time_mills",
    "registerBrokerTimeoutMills": "register_broker_timeout_mills",
    "registerNameServerPeriod": "register_name_server_period",
    "channelExpiredTimeout": "channel_expired_timeout",
    "subscriptionExpiredTimeout": "subscription_expired_timeout",
    "notifyConsumerIdsChangedEnable": "notify_consumer_ids_changed_enable",
    "flushConsumerOffsetInterval": "flush_consumer_offset_interval",
    "consumerOffsetUpdateVersionStep": "consumer_offset_update_version_step",
    "rocketmq.broker.rebalance.lockMaxLiveTime": "rebalance_lock_max_live_time",
    "brokerPermission": "broker_permission",
    "enablePropertyFilter": "enable_property_filter",
    "enableTopicMessageTypeCheck": "enable_topic_message_type_check",
    "enableMixedMessageType": "enable_mixed_message_type",
    "traceOn": "trace_on",
    "regionId": "region_id",
    "defaultMessageRequestMode": "default_message_request_mode",
    "defaultPopShareQueueNum": "default_pop_share_queue_num",
    "serverLoadBalancerEnable": "server_load_balancer_enable",
    "useServerSideResetOffset": "use_server_side_reset_offset",
    "reviveInterval": "revive_interval",
    "enablePopBufferMerge": "enable_pop_buffer_merge",
    "popCkStayBufferTime": "pop_ck_stay_buffer_time",
    "popCkStayBufferTimeOut": "pop_ck_stay_buffer_time_out",
    "popCkMaxBufferSize": "pop_ck_max_buffer_size",
    "popCkOffsetMaxQueueSize": "pop_ck_offset_max_queue_size",
    "appendCkAsync": "append_ck_async",
    "appendAckAsync": "append_ack_async",
    "popFromRetryProbability": "pop_from_retry_probability",
    "popResponseReturnActualRetryTopic": "pop_response_return_actual_retry_topic",
    "initPopOffsetByCheckMsgInMem": "init_pop_offset_by_check_msg_in_mem",
    "popPollingSize": "pop_polling_size",
    "maxPopPollingSize": "max_pop_polling_size",
    "timerWheelEnable": "timer_wheel_enable",
    "timerMaxDelaySec": "timer_max_delay_sec",
    "timerPrecisionMs": "timer_precision_ms",
    "timerFlushIntervalMs": "timer_flush_interval_ms",
    "rejectTransactionMessage": "reject_transaction_message",
    "transactionTimeOut": "transaction_timeout",
    "transactionCheckMax": "transaction_check_max",
    "transactionCheckInterval": "transaction_check_interval",
    "transactionOpMsgMaxSize": "transaction_op_msg_max_size",
    "transactionOpBatchInterval": "transaction_op_batch_interval",
}

_FIELD_TO_PROPERTY: Final = {v: k for k, v in BROKER_PROPERTY_NAMES.items()}

_POSITIVE_INTS: Final = (
    "default_topic_queue_nums",
    "revive_queue_num",
    "short_polling_time_mills",
    "register_broker_timeout_mills",
    "register_name_server_period",
    "channel_expired_timeout",
    "subscription_expired_timeout",
    "flush_consumer_offset_interval",
    "consumer_offset_update_version_step",
    "rebalance_lock_max_live_time",
    "revive_interval",
    "pop_ck_stay_buffer_time",
    "pop_ck_stay_buffer_time_out",
    "pop_ck_max_buffer_size",
    "pop_ck_offset_max_queue_size",
    "pop_polling_size",
    "max_pop_polling_size",
    "timer_max_delay_sec",
    "timer_precision_ms",
    "timer_flush_interval_ms",
    "transaction_timeout",
    "transaction_check_max",
    "transaction_check_interval",
    "transaction_op_msg_max_size",
    "transaction_op_batch_interval",
)


def _validate(cfg: BrokerConfig) -> list[str]:
    errors: list[str] = []

    def bad(field: str, why: str) -> None:
        errors.append(f"{_FIELD_TO_PROPERTY[field]}={getattr(cfg, field)!r}: {why}")

    for name in ("broker_name", "broker_cluster_name", "broker_ip1"):
        if not getattr(cfg, name).strip():
            bad(name, "must not be blank")
    if cfg.broker_id < 0:
        bad("broker_id", "must be ≥ 0")
    if not 0 <= cfg.listen_port <= 65535:
        bad("listen_port", "must be a port number (0 picks a free port)")
    for addr in cfg.namesrv_addr:
        host, sep, port = addr.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
            bad("namesrv_addr", f"{addr!r} is not host:port")
    for name in _POSITIVE_INTS:
        if getattr(cfg, name) <= 0:
            bad(name, "must be positive")
    if not 0 <= cfg.broker_permission <= 15:
        bad("broker_permission", "must be PermName bits (8 PRIORITY | 4 READ | 2 WRITE | 1 INHERIT)")
    if cfg.default_message_request_mode not in ("PULL", "POP"):
        bad("default_message_request_mode", "must be PULL or POP")
    if not 0 <= cfg.pop_from_retry_probability <= 100:
        bad("pop_from_retry_probability", "must be a percentage (0..100)")
    try:
        parse_delay_levels(cfg.message_delay_level)
    except ConfigError as exc:
        errors.append(str(exc))
    return errors


def _parse_bool(key: str, value: str) -> bool:
    v = value.strip().lower()
    if v == "true":
        return True
    if v == "false":
        return False
    raise ConfigError(f"{key}={value!r}: expected true or false")


def _parse_int(key: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ConfigError(f"{key}={value!r}: expected an integer") from None


def _convert(key: str, value: str, current: object) -> object:
    if isinstance(current, bool):
        return _parse_bool(key, value)
    if isinstance(current, int):
        return _parse_int(key, value)
    if isinstance(current, tuple):
        return tuple(part.strip() for part in value.split(";") if part.strip())
    return value.strip()


def broker_config_from_properties(props: dict[str, str], base: BrokerConfig) -> BrokerConfig:
    """``base`` with the RocketMQ-named ``props`` applied; :class:`ConfigError` naming any bad key/value."""
    changes: dict[str, object] = {}
    for key, value in props.items():
        field_name = BROKER_PROPERTY_NAMES.get(key)
        if field_name is None:
            raise ConfigError(f"unknown broker property {key!r} (value {value!r})")
        changes[field_name] = _convert(key, value, getattr(base, field_name))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]
