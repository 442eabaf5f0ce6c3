"""RecordBatch codec benchmarks: build, validate and decode to Arrow, uncompressed and lz4.

1000 batches x 1000 records of 100-byte values (with 8-byte keys), as a producer would send
them. Kernels are compiled (warm-up) before anything is timed; each step runs three times and
the best time counts, since the machine is shared. Peak memory is tracemalloc's peak of traced
allocations during a step (numpy buffers are traced; the inputs, made earlier, are not).
Run alone with ``python -m benchmarks.bench_records``.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
from streamhouse.broker.records import Compression, batches_to_arrow, build_batch, validate_batch

BATCHES = 1000
RECORDS = 1000
VALUE_BYTES = 100

Report = Callable[..., None]


def _columns() -> tuple[list[bytes], list[bytes]]:
    rng = np.random.default_rng(7)
    # Half-random values so lz4 has something realistic to do (neither all-zero nor noise).
    noise = rng.integers(0, 256, size=(RECORDS, VALUE_BYTES // 2), dtype=np.uint8)
    values = [bytes(row) + b"v" * (VALUE_BYTES - len(row)) for row in noise]
    keys = [b"key-%04d" % i for i in range(RECORDS)]
    return values, keys


def _measure(step: Callable[[], Any], repeat: int = 3) -> tuple[float, float, Any]:
    """Best time of ``repeat`` runs (the machine is shared) and the largest traced peak."""
    best = float("inf")
    peak = 0
    result = None
    for _ in range(repeat):
        result = None  # drop the previous result so runs do not overlap in memory
        tracemalloc.start()
        started = time.perf_counter()
        result = step()
        best = min(best, time.perf_counter() - started)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return best, peak / 2**20, result


def run(report: Report) -> None:
    values, keys = _columns()
    total = BATCHES * RECORDS
    # Warm-up: compile every kernel once, outside the measurements.
    warm = build_batch(values[:3], keys[:3], timestamps=1, headers=[[("h", b"1")], [], []])
    validate_batch(warm)
    batches_to_arrow([warm], 0)

    for codec in (Compression.NONE, Compression.LZ4):
        name = codec.name.lower()

        def build(codec: Compression = codec) -> list[bytes]:
            now = 1_700_000_000_000
            return [
                build_batch(values, keys, timestamps=now + i, compression=codec)
                for i in range(BATCHES)
            ]

        elapsed, peak, batches = _measure(build)
        size_mb = sum(map(len, batches)) / 2**20
        report(
            f"records.build_batch[{name}]",
            total / elapsed,
            peak,
            seconds=round(elapsed, 3),
            batch_mb=round(size_mb, 1),
        )

        elapsed, peak, _ = _measure(lambda batches=batches: [validate_batch(b) for b in batches])
        report(f"records.validate_batch[{name}]", total / elapsed, peak, seconds=round(elapsed, 3))

        elapsed, peak, table = _measure(lambda batches=batches: batches_to_arrow(batches, 0))
        assert table.num_rows == total
        report(
            f"records.batches_to_arrow[{name}]",
            total / elapsed,
            peak,
            seconds=round(elapsed, 3),
            arrow_mb=round(table.nbytes / 2**20, 1),
        )
        del batches, table


def main() -> None:
    def report(name: str, records_per_s: float, peak_mem_mb: float, **extra: object) -> None:
        details = " ".join(f"{k}={v}" for k, v in extra.items())
        print(f"{name:36} {records_per_s:>14,.0f} rec/s  peak {peak_mem_mb:8.1f} MB  {details}")

    run(report)


if __name__ == "__main__":
    main()
