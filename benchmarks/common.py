"""Helpers every benchmark module shares: memory reading, temp dirs per case, stand-alone output."""

from __future__ import annotations

import asyncio
import resource
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

Report = Callable[..., None]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (the kernel's figure)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_report(name: str, records_per_s: float, peak_mem_mb: float, **extra: object) -> None:
    """The report callback used when a module runs alone (``python -m benchmarks.bench_x``)."""
    print(f"{name:58} {records_per_s:>14,.0f} rec/s {peak_mem_mb:>7.1f} MB {extra}")


def run_async_cases(
    report: Report,
    cases: Sequence[Callable[[Report, Path], Awaitable[None]]],
    prefix: str,
) -> None:
    """Runs each async case in its own event loop and its own temporary directory."""
    for case in cases:
        root = Path(tempfile.mkdtemp(prefix=prefix))
        try:
            asyncio.run(case(report, root))
        finally:
            shutil.rmtree(root, ignore_errors=True)
