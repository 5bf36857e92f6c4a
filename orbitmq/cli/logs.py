"""Log output of the ``orbitmq`` servers: one line per event, machine-readable.

Two formats (key ``logFormat``): ``logfmt`` (default), e.g.::

    ts=2025-01-01T12:00:00.123Z level=INFO logger=orbitmq.broker.groups event=consumer_joined group=G \
msg="consumer 10.0.0.5@1234 joined group G from 10.0.0.5:50412"

and ``json`` (one JSON object per line, the same fields). Significant events carry an ``event`` field
(``started``, ``stopping``, ``broker_registered``, ``broker_expired``, ``consumer_joined``, ``rebalance``,
``recovery``, ``bad_frame``, ...; the list is in ``docs/operations.md``) plus the fields that identify what
it is about, given as ``extra=`` by the code that logs them. Level: ``--log-level``, else key ``logLevel``,
else ``$ORBITMQ_LOG_LEVEL``, else INFO (WARNING for the admin and bench commands).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from orbitmq.cli.config import read_properties
from orbitmq.core.errors import ConfigError

__all__ = ["JsonFormatter", "LogfmtFormatter", "configure_logging", "log_fields"]

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_FORMATS = ("logfmt", "json")
#: Attributes every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def log_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields of one log line, in output order: time, level, logger, extras, message, exception."""
    ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fields: dict[str, Any] = {
        "ts": f"{ts}.{int(record.msecs):03d}Z",
        "level": record.levelname,
        "logger": record.name,
    }
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = value
    fields["msg"] = record.getMessage()
    if record.exc_info:
        fields["exc"] = logging.Formatter().formatException(record.exc_info)
    return fields


def _logfmt_value(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and not any(c in text for c in ' ="\\\n\r\t'):
        return text
    return json.dumps(text, ensure_ascii=False)


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in log_fields(record).items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(log_fields(record), ensure_ascii=False, default=str)


def _choose(value: str, allowed: tuple[str, ...], key: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r}: expected one of {', '.join(allowed)}")
    return value


def configure_logging(args: argparse.Namespace, env: Mapping[str, str]) -> None:
    """Set the root logger's level and format from the command's flags, properties and environment."""
    props: dict[str, str] = {}
    if hasattr(args, "sets"):  # server commands; admin and bench take no properties
        props = read_properties(getattr(args, "config", None), args.sets)
    quiet = "WARNING" if args.command in ("admin", "bench") else "INFO"
    level = getattr(args, "log_level", None) or props.get("logLevel") or env.get("ORBITMQ_LOG_LEVEL") or quiet
    level = _choose(level.upper(), _LEVELS, "logLevel")
    fmt = _choose(props.get("logFormat", "logfmt").lower(), _FORMATS, "logFormat")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
