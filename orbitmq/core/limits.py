"""Named limits. Every bound in OrbitMQ has a name here, with its unit last.

A limit is a default; components take the value from their frozen config, which starts from these.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BODY_BYTES_MAX",
    "CONNECTION_IDLE_S_MAX",
    "FRAME_BYTES_MAX",
    "HEADER_BYTES_MAX",
    "INFLIGHT_REQUESTS_PER_CONNECTION_MAX",
    "LONG_POLL_REQUESTS_MAX",
    "MESSAGE_BYTES_MAX",
    "PROPERTIES_BYTES_MAX",
    "PULL_BATCH_BYTES_MAX",
    "PULL_BATCH_COUNT_MAX",
    "TOPIC_NAME_BYTES_MAX",
]

#: Largest remoting frame accepted (RocketMQ's ``com.rocketmq.remoting.frameMaxLength``).
FRAME_BYTES_MAX: Final = 16 * 1024 * 1024
#: Largest remoting header (JSON or binary); a header is small, a huge one is an attack or a bug.
HEADER_BYTES_MAX: Final = 1024 * 1024
#: Largest message body accepted by a send (RocketMQ ``maxMessageSize``, 4 MiB).
BODY_BYTES_MAX: Final = 4 * 1024 * 1024
#: Largest stored record: body plus headers, topic and properties.
MESSAGE_BYTES_MAX: Final = BODY_BYTES_MAX + 64 * 1024
#: Properties string length is a signed 16-bit field in the record layout.
PROPERTIES_BYTES_MAX: Final = 32767
#: Topic names: V1 records carry a one-byte (Java: signed) length.
TOPIC_NAME_BYTES_MAX: Final = 127
#: Requests one connection may have in flight before the server stops reading from it.
INFLIGHT_REQUESTS_PER_CONNECTION_MAX: Final = 1024
#: A connection with no traffic for this long is closed (RocketMQ ``serverChannelMaxIdleTimeSeconds``).
CONNECTION_IDLE_S_MAX: Final = 120
#: Held long-poll requests (pull, pop, notification) per broker before new ones are refused.
LONG_POLL_REQUESTS_MAX: Final = 100_000
#: One pull or pop returns at most this many messages and bytes.
PULL_BATCH_COUNT_MAX: Final = 1024
PULL_BATCH_BYTES_MAX: Final = 16 * 1024 * 1024 - 64 * 1024
