"""NameServer configuration (RocketMQ ``NamesrvConfig`` + the remoting ``listenPort``)."""

from __future__ import annotations

from dataclasses import dataclass

from orbitmq.core.errors import ConfigError
from orbitmq.namesrv.routes import BROKER_CHANNEL_EXPIRED_TIME_MS

__all__ = ["NamesrvConfig"]


@dataclass(frozen=True, slots=True)
class NamesrvConfig:
    """Each field names the RocketMQ property it mirrors."""

    #: Interface to listen on (RocketMQ binds all interfaces; OrbitMQ defaults to loopback).
    host: str = "127.0.0.1"
    port: int = 9876  # listenPort; 0 picks a free port (NamesrvApp.port tells which)
    broker_channel_expired_time_ms: int = BROKER_CHANNEL_EXPIRED_TIME_MS  # brokerChannelExpiredTime
    scan_not_active_broker_interval_ms: int = 10_000  # scanNotActiveBrokerInterval
    order_message_enable: bool = False  # orderMessageEnable: add orderTopicConf from KV config to routes
    return_order_topic_config_to_broker: bool = True  # returnOrderTopicConfigToBroker
    enable_all_topic_list: bool = True  # enableAllTopicList (GET_ALL_TOPIC_LIST_FROM_NAMESERVER)
    enable_topic_list: bool = True  # enableTopicList (GET_TOPICS_BY_CLUSTER)
    delete_topic_with_broker_registration: bool = False  # deleteTopicWithBrokerRegistration

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"listenPort {self.port} is not a TCP port")
        if self.broker_channel_expired_time_ms <= 0:
            raise ConfigError(
                f"brokerChannelExpiredTime {self.broker_channel_expired_time_ms} must be positive"
            )
        if self.scan_not_active_broker_interval_ms <= 0:
            raise ConfigError(
                f"scanNotActiveBrokerInterval {self.scan_not_active_broker_interval_ms} must be positive"
            )
