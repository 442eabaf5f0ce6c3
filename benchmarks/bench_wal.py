"""Write-ahead log benchmarks: bulk appends with interval sync, and `always` with group commit.

Run alone with ``python -m benchmarks.bench_wal``. Each batch is built once (a RecordBatch v2
header of 61 bytes and ~110 KB or ~11 KB of record bytes) and only its base offset is
re-stamped per append, so the figures measure the WAL, not batch building. Segment commits are
simulated with ``mark_committed`` so that files are deleted as they would be in a broker.
"""

from __future__ import annotations

import asyncio
import statistics
import struct
import time
from pathlib import Path

from streamhouse.broker.wal import SyncPolicy, WalConfig, WriteAheadLog

from benchmarks.common import Report, peak_rss_mb, print_report, run_async_cases

RECORD_BYTES = 100
RECORD_OVERHEAD = 10  # length, attributes, deltas, key/value lengths, header count (varints)
_HEADER = struct.Struct(">qiiBIhiqqqhii")  # the 61-byte RecordBatch v2 header
COMMIT_LAG = 100_000  # offsets kept uncommitted, as if segments committed that far behind


def make_batch(records: int) -> bytearray:
    """A batch of ``records`` 100-byte records with a valid header; stamp the base offset."""
    payload = bytes(records * (RECORD_BYTES + RECORD_OVERHEAD))
    header = _HEADER.pack(0, 49 + len(payload), 0, 2, 0, 0, records - 1, 0, 0, -1, -1, -1, records)
    return bytearray(header + payload)


async def append_interval(report: Report, root: Path, seconds: float = 3.0) -> None:
    """One writer, 1,000-record batches, default (interval) sync."""
    wal = await WriteAheadLog.open(WalConfig(root / "wal", sync_policy=SyncPolicy.INTERVAL))
    try:
        batch = make_batch(1000)
        offset = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            for _ in range(64):
                struct.pack_into(">q", batch, 0, offset)
                await wal.append(0, batch)
                offset += 1000
                await asyncio.sleep(0)  # a broker yields between requests; lets the syncer run
            wal.mark_committed(0, offset - COMMIT_LAG)
        elapsed = time.perf_counter() - started
        stats = wal.stats
        report(
            "wal append, interval sync, 1 writer, 1000-record batches",
            offset / elapsed,
            peak_rss_mb(),
            mb_per_s=round(stats.bytes / elapsed / 1e6, 1),
            fsyncs_per_s=round(stats.fsyncs / elapsed, 1),
            files_at_end=stats.files,
        )
    finally:
        await wal.close()


async def append_always(
    report: Report, root: Path, seconds: float = 3.0, writers: int = 16
) -> None:
    """Sixteen concurrent writers (one stream each), 100-record batches, fsync before ack."""
    wal = await WriteAheadLog.open(WalConfig(root / "wal", sync_policy=SyncPolicy.ALWAYS))
    latencies: list[float] = []
    offsets = [0] * writers
    deadline = time.perf_counter() + seconds

    async def writer(stream: int) -> None:
        batch = make_batch(100)
        while time.perf_counter() < deadline:
            struct.pack_into(">q", batch, 0, offsets[stream])
            t0 = time.perf_counter()
            await wal.append(stream, batch)
            latencies.append(time.perf_counter() - t0)
            offsets[stream] += 100
            if offsets[stream] % 10_000 == 0:
                wal.mark_committed(stream, offsets[stream] - COMMIT_LAG // 10)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(writer(stream) for stream in range(writers)))
        elapsed = time.perf_counter() - started
        stats = wal.stats
        latencies.sort()
        report(
            f"wal append, sync=always, {writers} writers, 100-record batches",
            sum(offsets) / elapsed,
            peak_rss_mb(),
            fsyncs_per_s=round(stats.fsyncs / elapsed, 1),
            appends_per_fsync=round(stats.appends / max(stats.fsyncs, 1), 1),
            p50_ms=round(statistics.median(latencies) * 1000, 2),
            p99_ms=round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
            fsync_max_ms=round(stats.fsync_seconds_max * 1000, 2),
        )
    finally:
        await wal.close()


def run(report: Report) -> None:
    run_async_cases(report, (append_interval, append_always), prefix="sh-bench-wal-")


if __name__ == "__main__":
    run(print_report)
