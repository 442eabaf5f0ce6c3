"""Partition-log benchmarks: append with interval and `always` sync, and reads from the cache.

Run alone with ``python -m benchmarks.bench_log``. Records are 100 bytes; batches are built once
and re-stamped by the log on every append, as a broker re-stamps what producers send.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

from streamhouse.broker.log import Acks, LogConfig, LogManager
from streamhouse.broker.records import build_batch
from streamhouse.broker.wal import SyncPolicy

from benchmarks.common import Report, peak_rss_mb, print_report, run_async_cases

RECORD = b"x" * 100


async def open_manager(root: Path, policy: SyncPolicy) -> LogManager:
    config = LogConfig(data_dir=root / "agent", agent_id="bench", wal_sync_policy=policy)
    return await LogManager.open(
        config,
        metadata_url=f"sqlite:///{root / 'meta.db'}",
        object_store_url=f"file://{root / 'obj'}",
    )


async def append_interval(report: Report, root: Path, seconds: float = 3.0) -> None:
    manager = await open_manager(root, SyncPolicy.INTERVAL)
    try:
        await manager.create_topic("bench", partitions=1)
        plog = await manager.partition("bench", 0)
        batch = build_batch([RECORD] * 1000)
        records = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            await plog.append([batch], acks=Acks.LEADER)
            await asyncio.sleep(0)  # a server yields between requests; lets sealing run
            records += 1000
        elapsed = time.perf_counter() - started
        report(
            "log append, interval sync, 1000-record batches",
            records / elapsed,
            peak_rss_mb(),
            mb_per_s=round(records * len(batch) / 1000 / elapsed / 1e6, 1),
        )
        await plog.flush()
        started = time.perf_counter()
        offset, read_records = 0, 0
        while offset < plog.high_watermark:
            batches = await plog.read(offset, max_bytes=4 << 20)
            for b in batches:
                last = int.from_bytes(b[0:8], "big") + int.from_bytes(b[23:27], "big")
                read_records += last + 1 - max(offset, int.from_bytes(b[0:8], "big"))
                offset = last + 1
        elapsed = time.perf_counter() - started
        report(
            "log read from segment cache (lz4 segments)",
            read_records / elapsed,
            peak_rss_mb(),
            segments=len(plog.segments),
        )
    finally:
        await manager.close()


async def append_always(
    report: Report, root: Path, seconds: float = 3.0, writers: int = 16
) -> None:
    manager = await open_manager(root, SyncPolicy.ALWAYS)
    try:
        await manager.create_topic("bench", partitions=1)
        plog = await manager.partition("bench", 0)
        batch = build_batch([RECORD] * 100)
        latencies: list[float] = []
        counts = [0] * writers
        deadline = time.perf_counter() + seconds
        fsyncs_before = manager.wal.stats.fsyncs if manager.wal else 0

        async def writer(lane: int) -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                await plog.append([batch], acks=Acks.ALL)
                latencies.append(time.perf_counter() - t0)
                counts[lane] += 100

        started = time.perf_counter()
        await asyncio.gather(*(writer(i) for i in range(writers)))
        elapsed = time.perf_counter() - started
        latencies.sort()
        fsyncs = (manager.wal.stats.fsyncs if manager.wal else 0) - fsyncs_before
        report(
            f"log append, sync=always, {writers} writers, 100-record batches",
            sum(counts) / elapsed,
            peak_rss_mb(),
            fsyncs_per_s=round(fsyncs / elapsed),
            p50_ms=round(statistics.median(latencies) * 1000, 2),
            p99_ms=round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        )
    finally:
        await manager.close()


def run(report: Report) -> None:
    run_async_cases(report, (append_interval, append_always), prefix="sh-bench-log-")


if __name__ == "__main__":
    run(print_report)
