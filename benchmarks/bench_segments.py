"""Segment benchmarks: encode a sealed run of batches with LZ4, and read it back.

Run alone with ``python -m benchmarks.bench_segments``. The segment is 100 batches of 1000
records of 100 bytes (about 10 MB raw), the size of a small sealed segment. Batches are built
with kafka-python's builder and stamped with dense base offsets, as a broker stamps them.
"""

from __future__ import annotations

import asyncio
import statistics
import struct
import time
from collections.abc import Callable

from kafka.record.default_records import DefaultRecordBatchBuilder
from streamhouse.broker.segments import SegmentReader, encode_segment

from benchmarks.common import Report, peak_rss_mb, print_report

BATCHES, RECORDS = 100, 1000
ROUNDS = 5


def value(i: int) -> bytes:
    """A 100-byte JSON-ish event: varied enough that LZ4 is not flattered by repeats."""
    text = f'{{"id":{i},"user":"user-{i * 7919 % 10007}","amount":{i * 31 % 100000 / 100:.2f},"n":"'
    return (text + f"{i * 2654435761 % 2**32:08x}" * 8)[:99].encode() + b"}"


def make_batches() -> list[bytes]:
    """Distinct batches, each built by kafka-python's builder and stamped with its base offset."""
    now = int(time.time() * 1000)
    out = []
    for n in range(BATCHES):
        builder = DefaultRecordBatchBuilder(
            magic=2,
            compression_type=0,
            is_transactional=False,
            producer_id=-1,
            producer_epoch=-1,
            base_sequence=-1,
            batch_size=1 << 30,
        )
        for i in range(RECORDS):
            builder.append(i, timestamp=now + i, key=None, value=value(n * RECORDS + i), headers=[])
        batch = bytearray(builder.build())
        struct.pack_into(">q", batch, 0, n * RECORDS)
        out.append(bytes(batch))
    return out


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """Median seconds over ``ROUNDS`` runs, and the last result."""
    times, result = [], None
    for _ in range(ROUNDS):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def run(report: Report) -> None:
    batches = make_batches()
    raw = sum(map(len, batches))
    records = BATCHES * RECORDS

    seconds, (data, _info) = timed(lambda: encode_segment(batches, compression="lz4"))
    report(
        "segment encode, lz4, 100 x 1000-record batches",
        records / seconds,
        peak_rss_mb(),
        mb_per_s=round(raw / seconds / 1e6, 1),
        ratio=round(raw / len(data), 2),
    )

    async def scan() -> int:
        reader = SegmentReader.from_bytes(data)
        return sum([len(b) async for b in reader.batches()])

    seconds, scanned = timed(lambda: asyncio.run(scan()))
    assert scanned == raw
    report(
        "segment full read back, lz4 (crc + decompress + split)",
        records / seconds,
        peak_rss_mb(),
        mb_per_s=round(raw / seconds / 1e6, 1),
    )

    async def fetches() -> int:
        reader = SegmentReader.from_bytes(data)
        offset, total = 0, 0
        while offset < records:
            got = await reader.read(offset, 1 << 20)
            total += len(got) * RECORDS
            offset += len(got) * RECORDS
        return total

    seconds, fetched = timed(lambda: asyncio.run(fetches()))
    assert fetched == records
    report(
        "segment consumer reads, 1 MiB max_bytes",
        records / seconds,
        peak_rss_mb(),
        mb_per_s=round(raw / seconds / 1e6, 1),
    )


if __name__ == "__main__":
    run(print_report)
