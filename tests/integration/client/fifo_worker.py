"""An orderly PushConsumer in its own process, for the FIFO crash test: it prints one JSON line per
consumed message (``{"body", "q", "o"}``, flushed at once) until it is killed. Each message takes DELAY_MS.

Usage: ``python -m tests.integration.client.fifo_worker NAMESRV GROUP TOPIC INSTANCE DELAY_MS``
"""

from __future__ import annotations

import asyncio
import json
import sys

from orbitmq.client import ConsumeOrderlyContext, MessageExt
from orbitmq.client.consumer import PushConsumer
from orbitmq.client.model import ConsumeFromWhere


async def main(namesrv: str, group: str, topic: str, instance: str, delay_ms: str) -> None:
    async def listener(m: MessageExt, ctx: ConsumeOrderlyContext) -> None:
        line = {"body": m.body.decode(), "q": m.queue_id, "o": m.queue_offset}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        await asyncio.sleep(int(delay_ms) / 1000)

    c = PushConsumer(group, [namesrv], consume_from_where=ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET,
                     long_poll_s=1.0, rebalance_interval_s=1.0, instance_name=instance)  # fmt: skip
    c.subscribe(topic)
    c.register_orderly_listener(listener)
    await c.start()
    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
