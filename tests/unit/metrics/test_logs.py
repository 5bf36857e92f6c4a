"""Log lines: one per event, logfmt or JSON, level and format from flags, properties or environment."""

from __future__ import annotations

import argparse
import json
import logging

import pytest

from orbitmq.cli.logs import JsonFormatter, LogfmtFormatter, configure_logging
from orbitmq.core.errors import ConfigError


def _record(msg: str = "consumer %s joined", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("orbitmq.broker.groups", logging.INFO, "x.py", 1, msg, args or ("c1",), None)
    record.__dict__.update(extra)
    return record


def test_logfmt_puts_extras_before_the_message_and_quotes_what_needs_it() -> None:
    line = LogfmtFormatter().format(_record(event="consumer_joined", group="G 1"))
    assert line.startswith("ts=") and "\n" not in line
    fields = line.split(" ", 3)
    assert fields[1:3] == ["level=INFO", "logger=orbitmq.broker.groups"]
    assert 'event=consumer_joined group="G 1" msg="consumer c1 joined"' in line


def test_json_lines_carry_the_same_fields() -> None:
    obj = json.loads(JsonFormatter().format(_record(event="rebalance", group="G")))
    assert obj["event"] == "rebalance" and obj["group"] == "G" and obj["msg"] == "consumer c1 joined"
    assert obj["level"] == "INFO" and obj["ts"].endswith("Z")


def test_exceptions_stay_on_one_line_in_logfmt() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, "x.py", 1, "failed", (), sys.exc_info())
    line = LogfmtFormatter().format(record)
    assert "\n" not in line and "ValueError: boom" in line


def _args(**kw: object) -> argparse.Namespace:
    base = {"command": "broker", "config": None, "sets": [], "log_level": None}
    return argparse.Namespace(**{**base, **kw})


@pytest.fixture
def root_logger():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield root
    root.handlers[:], level = saved
    root.setLevel(level)


def test_level_precedence_flag_then_property_then_environment(root_logger: logging.Logger) -> None:
    configure_logging(_args(log_level="error", sets=["logLevel=DEBUG"]), {"ORBITMQ_LOG_LEVEL": "INFO"})
    assert root_logger.level == logging.ERROR
    configure_logging(_args(sets=["logLevel=debug"]), {"ORBITMQ_LOG_LEVEL": "INFO"})
    assert root_logger.level == logging.DEBUG
    configure_logging(_args(), {"ORBITMQ_LOG_LEVEL": "warning"})
    assert root_logger.level == logging.WARNING
    configure_logging(_args(), {})
    assert root_logger.level == logging.INFO
    configure_logging(argparse.Namespace(command="admin"), {})
    assert root_logger.level == logging.WARNING


def test_format_from_a_property(root_logger: logging.Logger) -> None:
    configure_logging(_args(sets=["logFormat=json"]), {})
    assert isinstance(root_logger.handlers[0].formatter, JsonFormatter)


@pytest.mark.parametrize("setting", ["logLevel=LOUD", "logFormat=xml"])
def test_bad_values_name_the_key(setting: str, root_logger: logging.Logger) -> None:
    with pytest.raises(ConfigError, match=setting.split("=")[0]):
        configure_logging(_args(sets=[setting]), {})
