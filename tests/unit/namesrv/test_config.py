"""NamesrvConfig: RocketMQ defaults and clear errors for bad values."""

from __future__ import annotations

import pytest

from orbitmq.core.errors import ConfigError
from orbitmq.namesrv import NamesrvConfig


def test_defaults_mirror_rocketmq() -> None:
    cfg = NamesrvConfig()
    assert (cfg.port, cfg.broker_channel_expired_time_ms) == (9876, 120_000)
    assert (cfg.enable_all_topic_list, cfg.delete_topic_with_broker_registration) == (True, False)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"port": 70000}, "listenPort"),
        ({"port": -1}, "listenPort"),
        ({"broker_channel_expired_time_ms": 0}, "brokerChannelExpiredTime"),
        ({"scan_not_active_broker_interval_ms": -5}, "scanNotActiveBrokerInterval"),
    ],
)
def test_bad_values_name_the_property(kwargs: dict[str, int], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        NamesrvConfig(**kwargs)  # type: ignore[arg-type]
