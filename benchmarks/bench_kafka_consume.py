"""confluent-kafka (librdkafka) consuming from a real `streamhouse serve` over the Kafka protocol.

Run alone with ``python -m benchmarks.bench_kafka_consume``. About 3.2 million 100-byte records
are loaded into 4 partitions with our gRPC client (big batches, quick) and the benchmark waits
until they are committed to the object store, so the consumer reads sealed segments through
the segment cache (decoded block by block), as any consumer reading history does.

The consumer runs in its own lean process (only confluent-kafka imported), assigned to every
partition from offset 0, calling ``consume(num_messages=1000)``; the server is another process,
so the two share the machine's two cores. Consumer settings that matter:

* ``fetch.queue.backoff.ms=1``: librdkafka otherwise pauses a partition's fetching for a full
  second whenever its local queue is above ``queued.min.messages``, which caps any broker at a
  few hundred thousand records/s.
* ``num_messages=1000``: the Message objects of a smaller batch reuse warm memory; 10,000 per
  call is about 25% slower on the Python side.
* Python's garbage collector: every Message is a GC-tracked object, so young-generation
  collections cost the consumer about a third of its time. Reported twice: default collector,
  and ``gc.disable()`` around the consume loop (what a consumer application can do).

The client is the bottleneck: the broker serves about 9 million records per second of its own
CPU time, while confluent-kafka's Python side needs about a quarter of a microsecond per
record, and both share the two cores (with anything else running on the machine).

Peak memory is the consumer process's; the server's is ``server_rss_mb``.
``server_records_per_cpu_s`` is what the broker serves per second of its own CPU time, which
stays meaningful when other work shares the cores.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Report, peak_rss_mb, print_report
from benchmarks.server import cpu_seconds, server_rss_mb, start_server

RECORD_BYTES = 100
PARTITIONS = 4
RECORDS = 3_200_000
CHUNK = 200_000  # records per send_many call
CONSUME_BATCH = 1000  # num_messages per consume() call
TOPIC = "bench-kafka"
CONSUMER_CONFIG = {
    "group.id": "bench",  # required by the client; assign() never joins the group
    "enable.auto.commit": False,
    "fetch.max.bytes": 64 * 1024 * 1024,
    "max.partition.fetch.bytes": 4 * 1024 * 1024,
    "fetch.queue.backoff.ms": 1,
}


async def _load(address: str) -> int:
    """Fills the topic over gRPC; returns how many records were sent."""
    import numpy as np
    import pyarrow as pa
    from streamhouse.broker.client import AsyncAdminClient, AsyncProducer

    payload = np.frombuffer(os.urandom(RECORD_BYTES * 1000), np.uint8)
    data = np.tile(payload, CHUNK // 1000 + 1)[: CHUNK * RECORD_BYTES]
    offsets = np.arange(0, (CHUNK + 1) * RECORD_BYTES, RECORD_BYTES, dtype=np.int32)
    values = pa.Array.from_buffers(
        pa.binary(), CHUNK, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    admin = AsyncAdminClient(address)
    await admin.create_topic(TOPIC, partitions=PARTITIONS)
    sent = 0
    async with AsyncProducer(address, acks="leader", linger_ms=5) as producer:
        while sent < RECORDS:
            await asyncio.gather(
                producer.send_many(TOPIC, values), producer.send_many(TOPIC, values)
            )
            sent += 2 * CHUNK
    # Until every record is in a committed segment (memory holds none of them).
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            described = await admin.describe_topic(TOPIC)
            if sum(p.committed_offset for p in described.partitions) >= sent:
                return sent
            await asyncio.sleep(0.5)
        raise RuntimeError("segments were not committed in time")
    finally:
        await admin.close()


def consume(
    bootstrap: str, total: int, gc_off: bool, partitions: list[int] | None = None
) -> dict[str, float]:
    """Consumer side (in its own process): reads ``total`` records from offset 0 of
    ``partitions`` (all by default); a negative ``total`` means all they hold."""
    import gc
    import resource

    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, **CONSUMER_CONFIG})
    wanted = [TopicPartition(TOPIC, p, 0) for p in (partitions or range(PARTITIONS))]
    if total < 0:
        total = sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in wanted)
    consumer.assign(wanted)
    if gc_off:
        gc.disable()
    received = 0
    started = time.perf_counter()
    while received < total:
        # Never ask for more than remain: consume() would wait its timeout for them.
        messages = consumer.consume(num_messages=min(CONSUME_BATCH, total - received), timeout=10)
        if not messages:
            raise RuntimeError(f"no records after {received} of {total}")
        if messages[0].error() is not None:
            raise RuntimeError(str(messages[0].error()))
        received += len(messages)
    elapsed = time.perf_counter() - started
    consumer.close()
    return {
        "records": received,
        "started": time.time() - elapsed,
        "ended": time.time(),
        "records_per_s": received / elapsed,
        "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _consume_in_child(bootstrap: str, total: int, gc_off: bool) -> dict[str, float]:
    mode = "gc-off" if gc_off else "default"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_kafka_consume", bootstrap, str(total), mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _consume_in_parallel(bootstrap: str, total: int, consumers: int) -> float:
    """``consumers`` processes at once, each on its share of the partitions (as a group would
    split them); returns the aggregate records/s from the first start to the last end."""
    shares = [list(range(PARTITIONS))[i::consumers] for i in range(consumers)]
    command = [sys.executable, "-m", "benchmarks.bench_kafka_consume", bootstrap, "-1", "default"]
    children = [
        subprocess.Popen([*command, ",".join(map(str, share))], stdout=subprocess.PIPE, text=True)
        for share in shares
    ]
    results = []
    for child in children:
        out, _ = child.communicate(timeout=300)
        if child.returncode != 0:
            raise RuntimeError(f"consumer child failed with {child.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    received = sum(r["records"] for r in results)
    if received != total:
        raise RuntimeError(f"consumers read {received} records of {total}")
    return received / (max(r["ended"] for r in results) - min(r["started"] for r in results))


def _consume_with_kcat(bootstrap: str, total: int) -> float | None:
    """librdkafka driven from C (Debian package ``kcat``), when installed: the same consumer
    without Python's per-message objects. Returns records/s, or None without kcat."""
    kcat = shutil.which("kcat")
    if kcat is None:
        print("kcat not installed (apt-get install kcat): librdkafka-from-C case skipped")
        return None
    # Debian's kcat links an older librdkafka without fetch.queue.backoff.ms: a deep local queue
    # keeps it from pausing fetches instead.
    config = {**CONSUMER_CONFIG, "queued.min.messages": 10_000_000,
              "queued.max.messages.kbytes": 2_000_000}  # fmt: skip
    skip = {"enable.auto.commit", "fetch.queue.backoff.ms"}
    settings = [f"-X{k}={v}" for k, v in config.items() if k not in skip]
    args = [kcat, "-C", "-q", "-e", "-o", "beginning", "-b", bootstrap, "-t", TOPIC, "-f", "\\n"]
    started = time.perf_counter()
    done = subprocess.run([*args, *settings], check=True, capture_output=True, timeout=300)
    elapsed = time.perf_counter() - started
    received = done.stdout.count(b"\n")
    if received != total:
        raise RuntimeError(f"kcat read {received} records of {total}")
    return total / elapsed


def run(report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="sh-bench-kafka-") as tmp:
        server, address, bootstrap = start_server(Path(tmp))
        try:
            total = asyncio.run(_load(address))
            for gc_off, label in ((False, "default GC"), (True, "GC off")):
                cpu_before = cpu_seconds(server.pid)
                result = _consume_in_child(bootstrap, total, gc_off)
                server_cpu = cpu_seconds(server.pid) - cpu_before
                report(
                    f"confluent-kafka consume, 100 B records, 4 partitions, {label}",
                    result["records_per_s"],
                    result["peak_mem_mb"],
                    server_rss_mb=round(server_rss_mb(server), 1),
                    server_records_per_cpu_s=round(total / max(server_cpu, 0.01)),
                )
            cpu_before = cpu_seconds(server.pid)
            rate = _consume_in_parallel(bootstrap, total, 2)
            server_cpu = cpu_seconds(server.pid) - cpu_before
            report(
                "confluent-kafka consume, 2 consumer processes x 2 partitions, aggregate",
                rate,
                peak_rss_mb(),
                server_records_per_cpu_s=round(total / max(server_cpu, 0.01)),
            )
            cpu_before = cpu_seconds(server.pid)
            rate = _consume_with_kcat(bootstrap, total)
            if rate is not None:
                server_cpu = cpu_seconds(server.pid) - cpu_before
                report(
                    "kcat (librdkafka from C) consume, 100 B records, 4 partitions",
                    rate,
                    peak_rss_mb(),
                    server_records_per_cpu_s=round(total / max(server_cpu, 0.01)),
                )
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    if len(sys.argv) in (4, 5):  # a consumer child: BOOTSTRAP TOTAL default|gc-off [P,P,...]
        share = [int(p) for p in sys.argv[4].split(",")] if len(sys.argv) == 5 else None
        print(json.dumps(consume(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "gc-off", share)))
    else:
        run(print_report)
