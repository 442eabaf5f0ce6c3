"""The Python client against a real `streamhouse serve` process over gRPC on loopback.

Run alone with ``python -m benchmarks.bench_grpc``. Records are 100 bytes. The server runs in
its own process with embedded defaults (SQLite, local files, WAL interval sync), so client and
server each get one of the machine's two cores. Peak memory is the client's; the server's is
reported as ``server_rss_mb``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from streamhouse.broker.client import AsyncAdminClient, AsyncConsumer, AsyncProducer, TopicPartition

from benchmarks.common import Report, peak_rss_mb, print_report
from benchmarks.server import server_rss_mb, start_server

RECORD_BYTES = 100
PARTITIONS = 4
PRODUCE_RECORDS = 3_000_000
CHUNK = 200_000  # records per send_many call
LATENCY_RATE = 10_000  # records/s for the latency case
LATENCY_SECONDS = 5.0


def _values(n: int) -> pa.Array:
    payload = np.frombuffer(os.urandom(RECORD_BYTES * 1000), np.uint8)
    data = np.tile(payload, n // 1000 + 1)[: n * RECORD_BYTES]
    offsets = np.arange(0, (n + 1) * RECORD_BYTES, RECORD_BYTES, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


async def produce_and_consume(report: Report, address: str, server) -> None:  # type: ignore[no-untyped-def]
    admin = AsyncAdminClient(address)
    await admin.create_topic("bench", partitions=PARTITIONS)
    values = _values(CHUNK)
    async with AsyncProducer(address, acks="leader", linger_ms=5) as producer:
        await producer.send_many("bench", values.slice(0, 10_000))  # warm up (numba, channels)
        started = time.perf_counter()
        sent = 10_000
        while sent < PRODUCE_RECORDS:
            # Two calls in flight keep the stream busy while the next batches are built.
            await asyncio.gather(
                producer.send_many("bench", values), producer.send_many("bench", values)
            )
            sent += 2 * CHUNK
        elapsed = time.perf_counter() - started
    report(
        "grpc client produce, acks=leader, 4 partitions",
        (sent - 10_000) / elapsed,
        peak_rss_mb(),
        server_rss_mb=round(server_rss_mb(server), 1),
    )

    consumer = AsyncConsumer(address, auto_offset_reset="earliest", enable_auto_commit=False)
    consumer.assign([TopicPartition("bench", p) for p in range(PARTITIONS)])
    await consumer.seek_to_beginning()
    received = 0
    started = time.perf_counter()
    while received < sent:
        table = await consumer.poll_arrow(timeout_ms=1000)
        if table is not None:
            received += table.num_rows
    elapsed = time.perf_counter() - started
    report("grpc client consume (poll_arrow)", received / elapsed, peak_rss_mb())

    await consumer.seek_to_beginning()
    objects = 0
    target = min(sent, 1_000_000)
    started = time.perf_counter()
    while objects < target:
        objects += len(await consumer.poll(timeout_ms=1000))
    elapsed = time.perf_counter() - started
    report("grpc client consume (poll -> ConsumerRecord)", objects / elapsed, peak_rss_mb())
    await consumer.close()
    await admin.close()


async def latency(report: Report, address: str) -> None:
    admin = AsyncAdminClient(address)
    await admin.create_topic("latency", partitions=1)
    record = b"x" * RECORD_BYTES
    latencies: list[float] = []
    async with AsyncProducer(address, acks="leader", linger_ms=1) as producer:
        await (await producer.send("latency", record))
        interval = 0.001  # 10 records every millisecond
        per_tick = LATENCY_RATE // 1000
        started = time.perf_counter()
        futures = []
        tick = 0
        while time.perf_counter() - started < LATENCY_SECONDS:
            sent_at = time.perf_counter()
            for _ in range(per_tick):
                future = await producer.send("latency", record)
                future.add_done_callback(
                    lambda _, t=sent_at: latencies.append(time.perf_counter() - t)
                )
                futures.append(future)
            tick += 1
            delay = started + tick * interval - time.perf_counter()
            await asyncio.sleep(max(delay, 0))
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    report(
        "grpc client produce latency at 10k rec/s, acks=leader",
        len(latencies) / elapsed,
        peak_rss_mb(),
        p50_ms=round(float(np.percentile(ms, 50)), 2),
        p99_ms=round(float(np.percentile(ms, 99)), 2),
        max_ms=round(float(ms.max()), 2),
    )
    await admin.close()


async def acks_all_commit_latency(report: Report, address: str, seconds: float = 5.0) -> None:
    """What acks=all costs when it means "committed to the object store" (cluster mode):
    one producer, one record at a time, each waiting for seal + upload + metadata commit."""
    admin = AsyncAdminClient(address)
    await admin.create_topic("committed", partitions=1)
    latencies: list[float] = []
    async with AsyncProducer(address, acks="all", linger_ms=0) as producer:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            sent_at = time.perf_counter()
            await (await producer.send("committed", b"x" * RECORD_BYTES))
            latencies.append(time.perf_counter() - sent_at)
        elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    report(
        "grpc acks=all committed to object store (local files), 1 producer",
        len(latencies) / elapsed,
        peak_rss_mb(),
        p50_ms=round(float(np.percentile(ms, 50)), 2),
        p99_ms=round(float(np.percentile(ms, 99)), 2),
    )
    await admin.close()


def run(report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="sh-bench-grpc-") as tmp:
        server, address, _ = start_server(Path(tmp) / "a")
        try:
            asyncio.run(produce_and_consume(report, address, server))
            asyncio.run(latency(report, address))
        finally:
            server.terminate()
            server.wait(timeout=60)
        server, address, _ = start_server(Path(tmp) / "b", "--acks-all", "object-store")
        try:
            asyncio.run(acks_all_commit_latency(report, address))
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    run(print_report)
