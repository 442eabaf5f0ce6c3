"""Produce ten keyed records and read them back with the blocking client.

Start a server first (``make serve``), then run:

    .venv/bin/python examples/produce_consume.py [HOST:PORT]

The address comes from the argument, else ``STREAMHOUSE_SERVER``, else 127.0.0.1:50051.
Running it again appends ten more records and reads back only those.
"""

from __future__ import annotations

import os
import sys

from streamhouse.broker.client import AdminClient, Consumer, Producer, TopicPartition

TOPIC = "example-greetings"


def main(server: str) -> None:
    with AdminClient(server) as admin:
        topic = admin.create_topic(TOPIC, partitions=3, if_not_exists=True)
    print(f"topic {topic.name} has {topic.partitions} partitions")

    with Producer(server, acks="all") as producer:
        futures = [
            producer.send(TOPIC, f"hello {i}".encode(), key=f"user-{i % 4}".encode())
            for i in range(10)
        ]
        sent = [future.result() for future in futures]  # raises if a record was not stored
    print(f"produced {len(sent)} records")

    # Read back exactly what was just sent: start each partition at our first offset.
    first = {}
    for meta in sent:
        tp = TopicPartition(meta.topic, meta.partition)
        first[tp] = min(first.get(tp, meta.offset), meta.offset)
    wanted = {(m.partition, m.offset) for m in sent}
    with Consumer(server) as consumer:
        consumer.assign(list(first))
        for tp, offset in first.items():
            consumer.seek(tp, offset)
        received = 0
        while received < len(wanted):
            records = consumer.poll(timeout_ms=5000)
            if not records:
                sys.exit("timed out waiting for the records just produced")
            for record in records:
                if (record.partition, record.offset) in wanted:
                    received += 1
                    print(
                        f"partition={record.partition} offset={record.offset} "
                        f"key={record.key.decode()} value={record.value.decode()}"
                    )
    print(f"consumed {received} records")


if __name__ == "__main__":
    address = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("STREAMHOUSE_SERVER")
    main(address or "127.0.0.1:50051")
