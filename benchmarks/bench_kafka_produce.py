"""confluent-kafka (librdkafka) producing to a real `streamhouse serve` over the Kafka protocol.

Run alone with ``python -m benchmarks.bench_kafka_produce``. Records are 100 bytes, 4
partitions, no compression, ``linger.ms=5`` and the producer settings a throughput-minded user
picks (1 MB batches, a deep local queue, only failed deliveries reported). The records are
queued with ``produce_batch`` in lists of 10,000: the fastest way in from Python.

The server runs in its own process with embedded defaults (SQLite, local files, WAL interval
sync), so on a 2-core machine client and server share the cores. librdkafka's Python front end
needs more CPU per record than the server does, so the figure measured end to end is bounded by
the client; ``server_cpu_s`` and ``server_rec_per_cpu_s`` (records per second of server CPU,
user + system, read from /proc) show how much the server itself could take.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from confluent_kafka import KafkaError, Message, Producer
from streamhouse.broker.client import AsyncAdminClient

from benchmarks.common import Report, peak_rss_mb, print_report
from benchmarks.server import cpu_seconds, server_rss_mb, start_server

RECORD_BYTES = 100
PARTITIONS = 4
CHUNK = 10_000  # records per produce_batch call
THROUGHPUT_RECORDS = 2_000_000  # a few seconds per figure on 2 cores
LATENCY_RATE = 20_000  # records/s for the latency case
LATENCY_SECONDS = 5.0
TICK_S = 0.001

PRODUCER_SETTINGS = {
    "linger.ms": 5,
    "compression.type": "none",
    "batch.size": 1_000_000,
    "batch.num.messages": 100_000,
    "queue.buffering.max.messages": 2_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "delivery.report.only.error": True,  # a callback per success would cost more than sending
}


def _create_topics(address: str, *names: str) -> None:
    async def create() -> None:
        admin = AsyncAdminClient(address)
        try:
            for name in names:
                await admin.create_topic(name, partitions=PARTITIONS)
        finally:
            await admin.close()

    asyncio.run(create())


class _Failures:
    """Counts failed deliveries (only failures are reported, see PRODUCER_SETTINGS)."""

    def __init__(self) -> None:
        self.count = 0
        self.first: KafkaError | None = None

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.count += 1
            self.first = self.first or err


def _produce_all(producer: Producer, topic: str, total: int) -> None:
    messages = [{"value": os.urandom(RECORD_BYTES)} for _ in range(CHUNK)]
    queued = 0
    while queued < total:
        try:
            producer.produce_batch(topic, messages)
        except BufferError:  # the local queue is full: let librdkafka drain it
            producer.poll(0.001)
            continue
        queued += CHUNK
        producer.poll(0)


def throughput(
    report: Report, server: subprocess.Popen[bytes], bootstrap: str, topic: str, acks: str
) -> None:
    failures = _Failures()
    idempotent = acks == "all"  # what acks=all users run (the Java client's default since 3.0)
    producer = Producer(
        {
            **PRODUCER_SETTINGS,
            "bootstrap.servers": bootstrap,
            "acks": acks,
            "enable.idempotence": idempotent,
            "on_delivery": failures,
        }
    )
    _produce_all(producer, topic, 2 * CHUNK)  # warm up: metadata, producer id, connections
    if producer.flush(30):
        raise RuntimeError("warm-up records were not delivered")
    cpu_before = cpu_seconds(server.pid)
    started = time.perf_counter()
    _produce_all(producer, topic, THROUGHPUT_RECORDS)
    if producer.flush(120):
        raise RuntimeError("records were not delivered within 120 s")
    elapsed = time.perf_counter() - started
    server_cpu = cpu_seconds(server.pid) - cpu_before
    if failures.count:
        raise RuntimeError(f"{failures.count} deliveries failed, first: {failures.first}")
    name = f"kafka confluent produce, acks={acks}" + (" idempotent" if idempotent else "")
    report(
        f"{name}, {PARTITIONS} partitions",
        THROUGHPUT_RECORDS / elapsed,
        peak_rss_mb(),
        server_cpu_s=round(server_cpu, 2),
        server_rec_per_cpu_s=round(THROUGHPUT_RECORDS / max(server_cpu, 1e-9)),
        server_rss_mb=round(server_rss_mb(server), 1),
    )


def _stored_records(address: str, topic: str) -> int:
    async def count() -> int:
        admin = AsyncAdminClient(address)
        try:
            described = await admin.describe_topic(topic)
            return sum(p.next_offset - p.log_start_offset for p in described.partitions)
        finally:
            await admin.close()

    return asyncio.run(count())


def librdkafka_without_python(
    report: Report,
    server: subprocess.Popen[bytes],
    address: str,
    bootstrap: str,
    topic: str,
    acks: str,
) -> None:
    """The same librdkafka producer driven from C by ``kcat`` (Debian package ``kcat``), when it
    is installed: what the server takes when the client is not Python-bound."""
    kcat = shutil.which("kcat")
    if kcat is None:
        print("kcat not installed (apt-get install kcat): librdkafka-from-C case skipped")
        return
    # Distinct random lines, so records compress at rest no better than the Python cases' do.
    width = RECORD_BYTES - 1
    text = os.urandom(width * THROUGHPUT_RECORDS // 2 + 1).hex()
    with tempfile.NamedTemporaryFile(prefix="sh-bench-kcat-") as data:
        for start in range(0, THROUGHPUT_RECORDS, 100_000):
            lines = (text[i * width : (i + 1) * width] for i in range(start, start + 100_000))
            data.write(("\n".join(lines) + "\n").encode())
        data.flush()
        settings = [
            f"-X{k}={v}" for k, v in PRODUCER_SETTINGS.items() if k != "delivery.report.only.error"
        ]
        args = [kcat, "-P", "-q", "-b", bootstrap, "-t", topic, "-X", f"acks={acks}", *settings]
        if acks == "all":
            args += ["-X", "enable.idempotence=true"]
        cpu_before = cpu_seconds(server.pid)
        started = time.perf_counter()
        subprocess.run([*args, "-l", data.name], check=True, timeout=300)
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(server.pid) - cpu_before
    stored = _stored_records(address, topic)
    if stored != THROUGHPUT_RECORDS:
        raise RuntimeError(f"kcat sent {THROUGHPUT_RECORDS} records but {stored} are stored")
    report(
        f"kafka kcat (librdkafka from C) produce, acks={acks}, {PARTITIONS} partitions",
        THROUGHPUT_RECORDS / elapsed,
        peak_rss_mb(),
        server_cpu_s=round(server_cpu, 2),
        server_rec_per_cpu_s=round(THROUGHPUT_RECORDS / max(server_cpu, 1e-9)),
    )


def latency(report: Report, bootstrap: str, topic: str) -> None:
    """Produce latency (``produce()`` to acknowledgement, librdkafka's own measure) at a paced
    rate: 20 records every millisecond."""
    latencies: list[float] = []
    failures = _Failures()

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failures(err, msg)
        else:
            latencies.append(msg.latency())

    settings = {**PRODUCER_SETTINGS, "delivery.report.only.error": False}
    producer = Producer({**settings, "bootstrap.servers": bootstrap, "acks": 1})
    value = os.urandom(RECORD_BYTES)
    producer.produce(topic, value, on_delivery=delivered)
    producer.flush(30)
    latencies.clear()
    per_tick = int(LATENCY_RATE * TICK_S)
    started = time.perf_counter()
    tick = 0
    while time.perf_counter() - started < LATENCY_SECONDS:
        for _ in range(per_tick):
            producer.produce(topic, value, on_delivery=delivered)
        producer.poll(0)
        tick += 1
        delay = started + tick * TICK_S - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    producer.flush(30)
    elapsed = time.perf_counter() - started
    if failures.count:
        raise RuntimeError(f"{failures.count} deliveries failed, first: {failures.first}")
    ms = np.array(latencies) * 1000
    report(
        "kafka confluent produce latency at 20k rec/s, acks=1, linger.ms=5",
        len(latencies) / elapsed,
        peak_rss_mb(),
        p50_ms=round(float(np.percentile(ms, 50)), 2),
        p99_ms=round(float(np.percentile(ms, 99)), 2),
        max_ms=round(float(ms.max()), 2),
    )


def _wait_committed(address: str, *topics: str, timeout_s: float = 120.0) -> None:
    """Until the throughput runs' records are in committed segments: the latency case measures
    a steady 20k rec/s, not the upload of the gigabyte sent just before it."""

    async def wait() -> None:
        admin = AsyncAdminClient(address)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                described = [await admin.describe_topic(topic) for topic in topics]
                if all(
                    p.committed_offset >= p.next_offset for d in described for p in d.partitions
                ):
                    return
                await asyncio.sleep(0.2)
            raise RuntimeError("segments were not committed in time")
        finally:
            await admin.close()

    asyncio.run(wait())


def run(report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="sh-bench-kafka-produce-") as tmp:
        server, address, bootstrap = start_server(Path(tmp))
        try:
            _create_topics(address, "acks1", "acksall", "kcat1", "kcatall", "latency")
            throughput(report, server, bootstrap, "acks1", "1")
            throughput(report, server, bootstrap, "acksall", "all")
            librdkafka_without_python(report, server, address, bootstrap, "kcat1", "1")
            librdkafka_without_python(report, server, address, bootstrap, "kcatall", "all")
            _wait_committed(address, "acks1", "acksall", "kcat1", "kcatall")
            latency(report, bootstrap, "latency")
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    run(print_report)
