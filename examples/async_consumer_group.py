"""A producer and a consumer-group member running together on one asyncio loop.

Start a server first (``make serve``), then run:

    .venv/bin/python examples/async_consumer_group.py [HOST:PORT]

The address comes from the argument, else ``STREAMHOUSE_SERVER``, else 127.0.0.1:50051.
The member joins group ``example-workers``; the server assigns it partitions, and its
positions are committed automatically, so a second run continues where the first stopped.
Start several copies at once to watch the partitions being shared out.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

from streamhouse.broker.client import AsyncAdminClient, AsyncConsumer, AsyncProducer

TOPIC = "example-orders"
GROUP = "example-workers"
COUNT = 100


async def produce(server: str, run: str) -> None:
    async with AsyncProducer(server, linger_ms=10) as producer:
        for i in range(COUNT):
            await producer.send(TOPIC, f"{run}:{i}".encode(), key=f"customer-{i % 7}".encode())
        await producer.flush()
    print(f"producer: sent {COUNT} orders")


async def consume(server: str, run: str) -> None:
    async with AsyncConsumer(server, group_id=GROUP, auto_offset_reset="earliest") as consumer:
        consumer.subscribe([TOPIC])
        mine = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(mine) < COUNT:
            if loop.time() > deadline:
                sys.exit(f"consumer: only {len(mine)} of {COUNT} orders arrived in time")
            for record in await consumer.poll(timeout_ms=1000):
                if record.value.startswith(f"{run}:".encode()):  # skip earlier runs' orders
                    mine.add(record.value)
        partitions = sorted(tp.partition for tp in consumer.assignment())
        print(f"consumer: member of {GROUP} reading partitions {partitions}")
        print(f"consumer: received {len(mine)} orders")


async def main(server: str) -> None:
    async with AsyncAdminClient(server) as admin:
        await admin.create_topic(TOPIC, partitions=4, if_not_exists=True)
    run = uuid.uuid4().hex[:8]
    await asyncio.gather(consume(server, run), produce(server, run))


if __name__ == "__main__":
    address = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("STREAMHOUSE_SERVER")
    asyncio.run(main(address or "127.0.0.1:50051"))
